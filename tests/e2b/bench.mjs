// make bench: Sandbox.create() + commands.run('true') + kill() through E2B's JS SDK, one round
// at a time, after one round that warms the SDK's HTTP clients up (not counted); prints one line
// of JSON with every round's milliseconds (bench/e2b.py computes the percentiles next to the
// same work through the SeaCloud API).
import { Sandbox } from 'e2b'

const rounds = Number(process.argv[2] || 100)
const ms = []
for (let i = 0; i <= rounds; i++) {
  const t0 = performance.now()
  const sbx = await Sandbox.create({ timeoutMs: 60_000 })
  await sbx.commands.run('true')
  await sbx.kill()
  if (i > 0) ms.push(performance.now() - t0)
}
console.log(JSON.stringify(ms))
