// E2B's own JavaScript SDKs (e2b, @e2b/code-interpreter, pinned in package.json) against a real
// coved, the way their documentation shows them. Run by tests/integration/test_e2b_sdk.py:
//   node scenarios.mjs <scenario>
// with E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY pointing at the test's coved. Exit 0 and
// "ok <scenario>" on success; an assertion failure exits non-zero with its message.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  Template,
  BuildError,
  Sandbox as Base,
  CommandExitError,
  SandboxNotFoundError,
  AuthenticationError,
  RateLimitError,
  TimeoutError,
  FileType,
} from 'e2b'
import { Sandbox } from '@e2b/code-interpreter'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const T = { timeoutMs: 120_000 }

async function withSandbox(fn, opts = {}) {
  const sbx = await Base.create({ ...T, ...opts })
  try {
    await fn(sbx)
  } finally {
    await sbx.kill().catch(() => {})
  }
}

async function eventually(fn, ms = 10_000) {
  const end = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (e) {
      if (Date.now() > end) throw e
      await sleep(100)
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const scenarios = {
  // the shortest round trip, with whatever key E2B_API_KEY holds
  async smoke() {
    const sbx = await Base.create(T)
    try {
      assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n')
    } finally {
      assert.equal(await sbx.kill(), true)
    }
  },

  // Template.build() end to end: an image from the test's loopback registry (COVE_TEST_IMAGE,
  // reached through coved's docker.io mirror), COPY with a mode, RUN as the build user and as
  // root, ENV, USER (a new account), WORKDIR; then a sandbox of it as E2B's conventions say.
  async template() {
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'cove-e2b-tpl-'))
    try {
      fs.mkdirSync(path.join(ctx, 'app', 'sub'), { recursive: true })
      fs.writeFileSync(path.join(ctx, 'app', 'hello.txt'), 'hello from copy\n')
      fs.writeFileSync(path.join(ctx, 'app', 'sub', 'run.sh'), '#!/bin/sh\necho run\n')
      fs.writeFileSync(path.join(ctx, 'app', 'skip.md'), 'not copied by the glob\n')
      const name = 'e2b-tpl-' + Math.random().toString(36).slice(2, 10)
      const tpl = Template({ fileContextPath: ctx })
        .fromImage(process.env.COVE_TEST_IMAGE)
        .copy('app/*.txt', '/srv/app/', { mode: 0o640 })
        .copy('app/sub', 'sub')
        .runCmd('id -un > whoami.txt && pwd > where.txt')
        .runCmd('mkdir -p /opt && echo made-by-root > /opt/root.txt', { user: 'root' })
        .setEnvs({ GREETING: 'hi there' })
        .setUser('app')
        .setWorkdir('/work')
        .runCmd('id -un > me.txt && echo "$GREETING" > greeting.txt')
      const logs = []
      const info = await Template.build(tpl, name, { cpuCount: 1, memoryMB: 512, onBuildLogs: (l) => logs.push(String(l)) })
        .catch((e) => { throw new Error(`${e}\n${logs.join('\n')}`) })
      assert.match(info.buildId, UUID)
      assert.ok(info.templateId)
      assert.ok(logs.some((l) => /creating user 'app'/.test(l)), logs.join('\n'))
      assert.equal(await Template.exists(name), true)
      assert.equal(await Template.exists(name + '-missing'), false)
      const tags = await Template.getTags(info.templateId)
      assert.deepEqual(tags.map((t) => [t.tag, t.buildId]), [['latest', info.buildId]])
      await Template.assignTags(name, ['stable'])
      assert.deepEqual((await Template.getTags(name)).map((t) => t.tag).sort(), ['latest', 'stable'])
      await Template.removeTags(name, 'stable')

      assert.equal(await Base.create(name + ':stable', T).catch(() => null), null) // the tag is gone
      const box = await Base.create(name, T)
      try {
        // (the busybox image has no bash for commands: the file API shows what the build did)
        // steps ran as `user` in /home/user until USER, and as root when asked
        assert.equal(await box.files.read('/home/user/whoami.txt'), 'user\n')
        assert.equal(await box.files.read('/home/user/where.txt'), '/home/user\n')
        assert.equal(await box.files.read('/opt/root.txt'), 'made-by-root\n')
        assert.equal(await box.files.read('/work/me.txt'), 'app\n')
        assert.equal(await box.files.read('/work/greeting.txt'), 'hi there\n')
        // COPY: the glob's files under the static part, owned by the build user, with the mode
        const copied = await box.files.list('/srv/app')
        assert.deepEqual(copied.map((e) => [e.name, e.owner, e.mode & 0o777]), [['hello.txt', 'user', 0o640]])
        // a relative destination is under the WORKDIR of its time; a directory's contents merge
        const sub = await box.files.getInfo('/home/user/sub/run.sh')
        assert.equal(sub.owner, 'user')
        // the last USER and WORKDIR are this face's defaults: a relative write lands in /work,
        // owned by `app`
        const w = await box.files.write('made-here.txt', 'x')
        assert.equal(w.path, '/work/made-here.txt')
        assert.equal((await box.files.getInfo('/work/made-here.txt')).owner, 'app')
      } finally {
        await box.kill()
      }

      // from a template: base has bash and `user` already
      const fromBase = Template({ fileContextPath: ctx }).fromTemplate('base')
        .copy('app/hello.txt', 'greeting/hello.txt')
        .runCmd('cat greeting/hello.txt > copy-seen.txt')
      const b2 = await Template.build(fromBase, name + '-base')
      assert.match(b2.buildId, UUID)
      const box2 = await Base.create(name + '-base', T)
      try {
        assert.equal((await box2.commands.run('id -un; pwd; cat copy-seen.txt')).stdout,
          'user\n/home/user\nhello from copy\n')
      } finally {
        await box2.kill()
      }

      // a failing step is a BuildError naming the failure
      const bad = Template({ fileContextPath: ctx }).fromTemplate('base').runCmd('echo about to fail; exit 3')
      const e = await Template.build(bad, name + '-bad').catch((x) => x)
      assert.ok(e instanceof BuildError, String(e))
      assert.match(e.message, /status 3|exit status 3/)

      // a USER that is no account name (an option for useradd, a ':' for /etc/passwd) is
      // refused before anything runs
      for (const u of ['-o', 'a:b']) {
        const badUser = Template({ fileContextPath: ctx }).fromTemplate('base').setUser(u)
        const ue = await Template.build(badUser, name + '-baduser').catch((x) => x)
        assert.ok(ue instanceof BuildError, String(ue))
        assert.match(ue.message, /not a user name that can be created/)
      }
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true })
    }
  },

  async lifecycle() {
    const tag = 'run-' + Math.random().toString(36).slice(2)
    const a = await Base.create({ ...T, metadata: { suite: tag, role: 'a' } })
    const b = await Base.create({ ...T, metadata: { suite: tag, role: 'b' } })
    try {
      assert.match(a.sandboxId, /^[a-z0-9]{20}$/)
      const info = await a.getInfo()
      assert.equal(info.sandboxId, a.sandboxId)
      assert.equal(info.state, 'running')
      assert.deepEqual(info.metadata, { suite: tag, role: 'a' })
      assert.ok(info.endAt > info.startedAt)
      assert.equal(await a.isRunning(), true)

      // list with a metadata filter and a state filter
      const listed = await Base.list({ query: { metadata: { suite: tag } } }).nextItems()
      assert.deepEqual(listed.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort())
      const onlyA = await Base.list({ query: { metadata: { suite: tag, role: 'a' } } }).nextItems()
      assert.deepEqual(onlyA.map((s) => s.sandboxId), [a.sandboxId])

      // set timeout: endAt moves
      await a.setTimeout(600_000)
      const later = await a.getInfo()
      assert.ok(later.endAt.getTime() - Date.now() > 500_000)

      // pause twice: the second says "already paused"
      assert.equal(await a.pause(), true)
      assert.equal(await a.pause(), false)
      assert.equal((await a.getInfo()).state, 'paused')
      assert.equal(await a.isRunning(), false)
      const paused = await Base.list({ query: { metadata: { suite: tag }, state: ['paused'] } }).nextItems()
      assert.deepEqual(paused.map((s) => s.sandboxId), [a.sandboxId])
      const running = await Base.list({ query: { metadata: { suite: tag }, state: ['running'] } }).nextItems()
      assert.deepEqual(running.map((s) => s.sandboxId), [b.sandboxId])

      // Sandbox.connect from a second client resumes it
      const again = await Base.connect(a.sandboxId, T)
      assert.equal((await again.getInfo()).state, 'running')
      assert.equal((await again.commands.run('echo back')).stdout, 'back\n')

      // kill twice: the second returns false; then it is gone
      assert.equal(await a.kill(), true)
      assert.equal(await a.kill(), false)
      await assert.rejects(Base.getInfo(a.sandboxId), SandboxNotFoundError)
      await assert.rejects(Base.connect(a.sandboxId), SandboxNotFoundError)
    } finally {
      await a.kill().catch(() => {})
      await b.kill().catch(() => {})
    }
  },

  // metrics from coved's sampler (the test runs coved with --metrics-interval 1): a time
  // series of the sandbox's last hour, the fleet's latest points, nothing while paused
  async metrics() {
    await withSandbox(async (sbx) => {
      await sbx.commands.run('head -c 50000000 /dev/zero > /home/user/big.bin')
      const burner = await sbx.commands.run('while :; do :; done', { background: true })
      await sleep(8000) // a few rounds, and a walk of the writable layer after the write
      const m = await sbx.getMetrics()
      assert.ok(m.length >= 3, JSON.stringify(m))
      for (let i = 1; i < m.length; i++) assert.ok(m[i].timestamp > m[i - 1].timestamp)
      const last = m[m.length - 1]
      const url = process.env.E2B_API_URL
      const auth = { headers: { 'X-API-KEY': process.env.E2B_API_KEY } }
      const info = await (await fetch(`${url}/sandboxes/${sbx.sandboxId}`, auth)).json()
      assert.equal(last.cpuCount, info.cpuCount)
      assert.equal(last.memTotal, info.memoryMB * 1024 * 1024)
      assert.equal(last.diskTotal, info.diskSizeMB * 1024 * 1024)
      assert.ok(last.memUsed > 0 && last.memUsed <= last.memTotal)
      assert.ok(last.diskUsed >= 50_000_000, String(last.diskUsed))
      assert.ok(Math.max(...m.map((x) => x.cpuUsedPct)) >= 10, JSON.stringify(m.map((x) => x.cpuUsedPct)))
      assert.ok(m.every((x) => x.cpuUsedPct >= 0 && x.cpuUsedPct <= 100))
      // a window: only its points
      const since = m[m.length - 2].timestamp
      const tail = await sbx.getMetrics({ start: since })
      assert.ok(tail.length >= 1 && tail.every((x) => x.timestamp.getTime() >= Math.floor(since.getTime() / 1000) * 1000))
      await burner.kill()
      // the fleet: the latest point of each running sandbox
      const r = await fetch(`${url}/sandboxes/metrics?sandbox_ids=${sbx.sandboxId}`, auth)
      assert.equal(r.status, 200)
      const fleet = (await r.json()).sandboxes
      assert.deepEqual(Object.keys(fleet), [sbx.sandboxId])
      assert.ok(new Date(fleet[sbx.sandboxId].timestamp) >= last.timestamp)
      const bad = await fetch(`${url}/sandboxes/${sbx.sandboxId}/metrics?start=200&end=100`, auth)
      assert.equal(bad.status, 400)
      // paused: none
      assert.equal(await sbx.pause(), true)
      assert.deepEqual(await Base.getMetrics(sbx.sandboxId), [])
    })
  },

  // network settings enforced (run by test_e2b_network.py in the test internet's host
  // namespace: www.allowed.test and 198.51.100.10 / .20, 203.0.113.10 serve HTTP there)
  async network() {
    const curl = async (sbx, url) => {
      const r = await sbx.commands.run(`curl -s -m 5 ${url}`).catch((e) => e)
      return r instanceof CommandExitError ? `exit ${r.exitCode}` : r.stdout
    }
    const sbx = await Base.create({
      ...T, allowInternetAccess: false, network: { allowOut: ['*.allowed.test', '198.51.100.20/32'] },
    })
    try {
      assert.match(await curl(sbx, 'http://www.allowed.test/'), /hello from 198\.51\.100\.10:80/)
      assert.match(await curl(sbx, 'http://198.51.100.20/'), /hello from 198\.51\.100\.20:80/)
      assert.equal(await curl(sbx, 'http://203.0.113.10/'), 'exit 7') // refused at once
      assert.equal(await curl(sbx, 'http://other.test/'), 'exit 6') // no such name for it
      let info = await sbx.getInfo()
      assert.equal(info.allowInternetAccess, false)
      assert.deepEqual([...info.network.allowOut].sort(), ['*.allowed.test', '198.51.100.20/32'])

      // PUT /network replaces the egress settings: internet back, only .20 denied
      await Base.updateNetwork(sbx.sandboxId, { denyOut: ['198.51.100.20/32'] })
      assert.match(await curl(sbx, 'http://203.0.113.10/'), /hello from 203\.0\.113\.10:80/)
      assert.equal(await curl(sbx, 'http://other.test/'), 'exit 7') // resolves; its address is denied
      assert.equal(await curl(sbx, 'http://198.51.100.20/'), 'exit 7')
      info = await sbx.getInfo()
      assert.deepEqual([info.network.allowOut, info.network.denyOut], [[], ['198.51.100.20/32']])
      assert.equal(info.allowInternetAccess, undefined)

      // {} clears the rules
      await Base.updateNetwork(sbx.sandboxId, {})
      assert.match(await curl(sbx, 'http://198.51.100.20/'), /hello from 198\.51\.100\.20:80/)
      // an egress proxy is not Cove's: 400, nothing changes
      await assert.rejects(Base.updateNetwork(sbx.sandboxId, { egressProxy: { address: 'http://x:1' } }))
      assert.match(await curl(sbx, 'http://198.51.100.20/'), /hello from/)
    } finally {
      await sbx.kill()
    }
  },

  async commands() {
    await withSandbox(async (sbx) => {
      const who = await sbx.commands.run('whoami; pwd')
      assert.equal(who.stdout, 'user\n/home/user\n')
      assert.equal(who.exitCode, 0)
      assert.equal((await sbx.commands.run('whoami', { user: 'root' })).stdout, 'root\n')
      assert.equal((await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout, '/tmp\n')
      assert.equal((await sbx.commands.run('echo $FOO', { envs: { FOO: 'bar' } })).stdout, 'bar\n')

      // exit codes and CommandExitError
      const err = await sbx.commands.run('echo out; echo err >&2; exit 3').catch((e) => e)
      assert.ok(err instanceof CommandExitError, String(err))
      assert.equal(err.exitCode, 3)
      assert.equal(err.stdout, 'out\n')
      assert.equal(err.stderr, 'err\n')

      // streaming callbacks
      const seen = []
      await sbx.commands.run('for i in 1 2 3; do echo $i; done', { onStdout: (d) => seen.push(d) })
      assert.equal(seen.join(''), '1\n2\n3\n')

      // background + wait, list, connect from a second handle
      const bg = await sbx.commands.run('sleep 1; echo done', { background: true })
      assert.ok(bg.pid > 0)
      assert.ok((await sbx.commands.list()).some((p) => p.pid === bg.pid))
      const res = await bg.wait()
      assert.equal(res.stdout, 'done\n')

      // stdin
      const cat = await sbx.commands.run('cat', { background: true, stdin: true })
      await sbx.commands.sendStdin(cat.pid, 'ping\n')
      await eventually(async () => assert.equal(cat.stdout, 'ping\n'))
      assert.equal(await sbx.commands.kill(cat.pid), true)
      const killed = await cat.wait().catch((e) => e)
      assert.ok(killed instanceof CommandExitError)
      assert.equal(await sbx.commands.kill(cat.pid), false) // gone: not_found → false

      // a timeout kills the process and reports a timeout
      const t0 = Date.now()
      const to = await sbx.commands.run('sleep 30', { timeoutMs: 1000 }).catch((e) => e)
      assert.ok(to instanceof TimeoutError || to instanceof CommandExitError, String(to))
      assert.ok(Date.now() - t0 < 20_000)
    })
  },

  async files() {
    await withSandbox(async (sbx) => {
      const info = await sbx.files.write('notes/hello.txt', 'hi there')
      assert.equal(info.path, '/home/user/notes/hello.txt')
      assert.equal(await sbx.files.read('notes/hello.txt'), 'hi there')
      const bytes = new Uint8Array([0, 1, 2, 250, 255])
      await sbx.files.write('/tmp/b.bin', bytes.buffer)
      assert.deepEqual(await sbx.files.read('/tmp/b.bin', { format: 'bytes' }), bytes)
      await sbx.files.write('/tmp/empty', '')
      assert.equal(await sbx.files.read('/tmp/empty'), '')
      const many = await sbx.files.write([
        { path: '/tmp/m/a.txt', data: 'A' },
        { path: '/tmp/m/b.txt', data: 'B' },
      ])
      assert.deepEqual(many.map((w) => w.path), ['/tmp/m/a.txt', '/tmp/m/b.txt'])

      const list = await sbx.files.list('/tmp/m')
      assert.deepEqual(list.map((e) => [e.name, e.type, e.size]), [['a.txt', FileType.FILE, 1], ['b.txt', FileType.FILE, 1]])
      assert.equal(await sbx.files.exists('/tmp/m/a.txt'), true)
      assert.equal(await sbx.files.exists('/tmp/m/nope'), false)
      assert.equal(await sbx.files.makeDir('/tmp/newdir'), true)
      assert.equal(await sbx.files.makeDir('/tmp/newdir'), false)
      const moved = await sbx.files.rename('/tmp/m/a.txt', '/tmp/newdir/a2.txt')
      assert.equal(moved.path, '/tmp/newdir/a2.txt')
      assert.equal(await sbx.files.exists('/tmp/m/a.txt'), false)
      await sbx.files.remove('/tmp/newdir')
      assert.equal(await sbx.files.exists('/tmp/newdir'), false)
      await sbx.files.remove('/tmp/never-there') // a missing path is fine
      await assert.rejects(sbx.files.read('/tmp/never-there'))

      // transfers run as root, and what they create or overwrite belongs to the acting user
      // (e2b.md §4.2): /root is root's 0700 directory
      const inRoot = await sbx.files.write('/root/deep/for-user.txt', 'mine')
      assert.equal(inRoot.path, '/root/deep/for-user.txt')
      assert.equal(await sbx.files.read('/root/deep/for-user.txt'), 'mine')
      assert.equal((await sbx.files.getInfo('/root/deep/for-user.txt')).owner, 'user')
      assert.equal((await sbx.files.getInfo('/root/deep')).owner, 'user')
      await sbx.files.write('/opt/shared/conf.txt', 'by root', { user: 'root' })
      assert.equal((await sbx.files.getInfo('/opt/shared/conf.txt')).owner, 'root')
      await sbx.files.write('/opt/shared/conf.txt', 'by user')
      const over = await sbx.files.getInfo('/opt/shared/conf.txt')
      assert.deepEqual([over.owner, await sbx.files.read('/opt/shared/conf.txt')], ['user', 'by user'])
      assert.equal((await sbx.files.getInfo('/opt/shared')).owner, 'root') // it existed
      assert.equal(await sbx.files.makeDir('/srv/made/here'), true)
      assert.equal((await sbx.files.getInfo('/srv/made/here')).owner, 'user')
      assert.equal((await sbx.files.getInfo('/srv/made')).owner, 'user')
      // processes still run as the acting user
      assert.equal((await sbx.commands.run('cat /root/deep/for-user.txt').catch((e) => e)).exitCode, 1)

      // metadata attributes (X-Metadata-*)
      await sbx.files.write('/tmp/meta.txt', 'm', { metadata: { owner: 'alice', Kind: 'note' } })
      const st = await sbx.files.getInfo('/tmp/meta.txt')
      assert.deepEqual(st.metadata, { owner: 'alice', kind: 'note' })

      // watchDir sees an upload as CREATE then WRITE of the target name
      await sbx.files.makeDir('/tmp/w')
      const events = []
      const handle = await sbx.files.watchDir('/tmp/w', (e) => events.push(e))
      await sbx.files.write('/tmp/w/new.txt', 'x')
      await eventually(async () => {
        const names = events.map((e) => `${e.type}:${e.name}`)
        assert.ok(names.includes('create:new.txt'), names.join(','))
        assert.ok(names.includes('write:new.txt'), names.join(','))
      })
      assert.ok(!events.some((e) => e.name.includes('.cove-')))
      await handle.stop()

      // signed upload and download URLs (no routing information in the URL)
      const up = await sbx.uploadUrl('/tmp/signed.txt', { useSignatureExpiration: 60_000 })
      const form = new FormData()
      form.append('file', new Blob(['signed content']), 'signed.txt')
      const r1 = await fetch(up, { method: 'POST', body: form })
      assert.equal(r1.status, 200, await r1.clone().text())
      const down = await sbx.downloadUrl('/tmp/signed.txt', { useSignatureExpiration: 60_000 })
      const r2 = await fetch(down)
      assert.equal(r2.status, 200)
      assert.equal(await r2.text(), 'signed content')
      const bad = await fetch(down.replace(/signature=v1_[^&]+/, 'signature=v1_bogus'))
      assert.equal(bad.status, 401)
    }, { secure: true })
  },

  async pty() {
    await withSandbox(async (sbx) => {
      let out = ''
      const dec = new TextDecoder()
      const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => { out += dec.decode(d) } })
      await sbx.pty.sendInput(term.pid, new TextEncoder().encode('echo pty-$((40+2))\n'))
      await eventually(async () => assert.ok(out.includes('pty-42'), out))
      await sbx.pty.resize(term.pid, { cols: 100, rows: 30 })
      await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size\n'))
      await eventually(async () => assert.ok(out.includes('30 100'), out))
      assert.equal(await sbx.pty.kill(term.pid), true)
      await term.wait().catch(() => {})
    })
  },

  async code() {
    const sbx = await Sandbox.create(T)
    try {
      assert.equal((await sbx.runCode('x = 1; x')).text, '1')
      const chunks = []
      const ex = await sbx.runCode('x += 41\nprint("hello", x)\nimport sys; print("warn", file=sys.stderr)\nx', {
        onStdout: (m) => chunks.push(['out', m.line]),
        onStderr: (m) => chunks.push(['err', m.line]),
      })
      assert.equal(ex.text, '42')
      assert.deepEqual(ex.logs.stdout, ['hello 42\n'])
      assert.deepEqual(ex.logs.stderr, ['warn\n'])
      assert.deepEqual(chunks, [['out', 'hello 42\n'], ['err', 'warn\n']])

      const err = await sbx.runCode('undefined_name + 1')
      assert.equal(err.error.name, 'NameError')
      assert.equal(err.error.value, "name 'undefined_name' is not defined")
      assert.match(err.error.traceback, /NameError/)

      const chart = await sbx.runCode('import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()')
      assert.equal(chart.results.length, 1)
      assert.ok(chart.results[0].png.length > 1000)
      assert.equal(chart.results[0].text, '<Figure size 640x480 with 1 Axes>')

      const rich = await sbx.runCode('class H:\n  def _repr_html_(self): return "<b>hi</b>"\n  def _repr_json_(self): return {"a": 1}\nH()')
      assert.equal(rich.results[0].html, '<b>hi</b>')
      assert.deepEqual(rich.results[0].json, { a: 1 })

      const env = await sbx.runCode('import os; os.environ.get("GREETING")', { envs: { GREETING: 'hey' } })
      assert.equal(env.text, 'hey')
      assert.equal((await sbx.runCode('import os; os.environ.get("GREETING")')).text, undefined)

      // contexts in two languages
      const py = await sbx.createCodeContext({ language: 'python', cwd: '/tmp' })
      await sbx.runCode('y = 5', { context: py })
      assert.equal((await sbx.runCode('y * 2', { context: py })).text, '10')
      assert.equal((await sbx.runCode('import os; os.getcwd()', { context: py })).text, '/tmp')
      const js = await sbx.createCodeContext({ language: 'js' })
      assert.equal((await sbx.runCode('const a = 40; a + 2', { context: js })).text, '42')
      const jsErr = await sbx.runCode('throw new TypeError("boom")', { language: 'javascript' })
      assert.equal(jsErr.error.name, 'TypeError')
      assert.equal(jsErr.error.value, 'boom')
      // the completion value of the last statement, found by parsing (not by the last line)
      const runJs = async (code) => sbx.runCode(code, { language: "javascript" })
      assert.equal((await runJs('const s = "a;b;c"\ns.split(";")\n  .length')).text, '3')
      assert.equal((await runJs('if (true) { 1 }')).text, undefined)
      assert.equal((await runJs('Promise.resolve({ x: 1 })')).text, '{ x: 1 }')
      assert.equal((await runJs('await new Promise((r) => setTimeout(() => r("late"), 10))')).text, 'late')
      assert.equal((await runJs('import os from "node:os"\nos.platform()')).text, 'linux')
      const logged = await runJs('console.log("printed"); undefined')
      assert.deepEqual([logged.text, logged.logs.stdout], [undefined, ['printed\n']])
      // TypeScript: compiled first, a syntax error stops it before anything runs
      const ts = await sbx.runCode('const n: number = 20\ninterface P { q: string }\nn * 2', { language: 'ts' })
      assert.equal(ts.text, '40')
      const tsBad = await sbx.runCode('console.log("ran")\nconst a: = 1', { language: 'typescript' })
      assert.equal(tsBad.error.name, 'SyntaxError')
      assert.deepEqual(tsBad.logs.stdout, [])
      const tsThrow = await sbx.runCode('class MyError extends Error { name = "MyError" }\nthrow new MyError("no")', { language: 'typescript' })
      assert.deepEqual([tsThrow.error.name, tsThrow.error.value], ['MyError', 'no'])

      const ids = (await sbx.listCodeContexts()).map((c) => c.id)
      assert.ok(ids.includes(py.id) && ids.includes(js.id))
      await sbx.restartCodeContext(py)
      assert.equal((await sbx.runCode('"y" in globals()', { context: py })).text, 'False')
      await sbx.removeCodeContext(js)
      assert.ok(!(await sbx.listCodeContexts()).some((c) => c.id === js.id))

      // an interrupted long run stops the kernel's execution and keeps the context
      await sbx.runCode('z = 7')
      const t0 = Date.now()
      await assert.rejects(sbx.runCode('import time\nwhile True: time.sleep(0.1)', { timeoutMs: 2000 }))
      assert.ok(Date.now() - t0 < 15_000)
      await eventually(async () => assert.equal((await sbx.runCode('z')).text, '7'), 20_000)
    } finally {
      await sbx.kill().catch(() => {})
    }
  },

  async errors() {
    // not found
    await assert.rejects(Base.connect('aaaaaaaaaaaaaaaaaaaa'), SandboxNotFoundError)
    await assert.rejects(Base.getInfo('aaaaaaaaaaaaaaaaaaaa'), SandboxNotFoundError)
    assert.equal(await Base.kill('aaaaaaaaaaaaaaaaaaaa'), false)
    // authentication failure
    await assert.rejects(Base.create({ ...T, apiKey: 'e2b_' + '0'.repeat(40) }), AuthenticationError)
  },

  // rate limit: a team whose concurrentSandboxes limit is 1 (set by the test through the admin
  // routes) gets 429 for a second sandbox, which the SDK reports as RateLimitError (no
  // Retry-After: the SDK does not wait and retry)
  async ratelimit() {
    const first = await Base.create(T)
    try {
      const t0 = Date.now()
      const e = await Base.create(T).catch((x) => x)
      assert.ok(e instanceof RateLimitError, String(e))
      assert.ok(Date.now() - t0 < 30_000)
      const r = await fetch(`${process.env.E2B_API_URL}/v2/sandboxes`, {
        method: 'POST', headers: { 'X-API-KEY': process.env.E2B_API_KEY, 'Content-Type': 'application/json' }, body: '{}',
      })
      assert.equal(r.status, 429)
      assert.equal(r.headers.get('retry-after'), null)
      const body = await r.json()
      assert.equal(body.code, 429)
    } finally {
      await first.kill()
    }
    // room again
    const again = await Base.create(T)
    await again.kill()
  },
}

const name = process.argv[2]
if (!scenarios[name]) {
  console.error('unknown scenario', name, Object.keys(scenarios))
  process.exit(2)
}
await scenarios[name]()
console.log('ok', name)
