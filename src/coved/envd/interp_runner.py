# SPDX-License-Identifier: MIT
# The code interpreter's runner (e2b.md §5), run inside the sandbox by coved as
#   python3 -u -c <this file> kernel            a stateful Python context
#   python3 -u -c <this file> oneshot <lang>    one execution of javascript, typescript, bash, r, java
# Standard library only. Requests arrive on stdin, one JSON line each:
#   {"id": "<execution>", "code": "...", "env_vars": {...}}
# and every line of the /execute stream (§5.2) goes out on the original stdout as
#   "<id> <json>\n"
# ending with the execution's end_of_execution line. The user code's own stdout and stderr
# (print, C extensions, child processes) are pipes that this runner reads and coalesces.
import ast, base64, json, os, select, signal, subprocess, sys, tempfile, textwrap, threading, time
import traceback

PROTO = os.fdopen(os.dup(1), "wb", buffering=0)
PROTO_LOCK = threading.Lock()
CURRENT = {"id": "-"}


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def emit(obj):
    line = (CURRENT["id"] + " " + json.dumps(obj, separators=(",", ":")) + "\n").encode()
    with PROTO_LOCK:
        PROTO.write(line)


class Coalescer:
    """One output stream: a line when the buffer ends with a newline, after 100 ms without one,
    before any line of another type, and at the end (§5.2)."""

    def __init__(self, kind):
        self.kind, self.buf, self.last, self.lock = kind, "", 0.0, threading.Lock()
        self.partner = None

    def add(self, text):
        if self.partner is not None:  # a line of another type comes first
            self.partner.flush()
        with self.lock:
            self.buf += text
            self.last = time.monotonic()
            if self.buf.endswith("\n"):
                self._flush()

    def _flush(self):
        if self.buf:
            emit({"type": self.kind, "text": self.buf, "timestamp": now()})
            self.buf = ""

    def flush(self, idle_only=False):
        with self.lock:
            if not idle_only or time.monotonic() - self.last >= 0.1:
                self._flush()


OUT, ERR = Coalescer("stdout"), Coalescer("stderr")
OUT.partner, ERR.partner = ERR, OUT


class Writer:
    """sys.stdout / sys.stderr of the kernel: Python-level writes go straight to their
    Coalescer, in order; output of C code and child processes reaches fd 1 and 2 (pipes)."""

    def __init__(self, sink, fd):
        self.sink, self.fd = sink, fd
        self.encoding, self.errors = "utf-8", "replace"

    def write(self, s):
        if not isinstance(s, str):
            s = str(s)
        if s:
            self.sink.add(s)
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def fileno(self):
        return self.fd

    def isatty(self):
        return False

    def writable(self):
        return True


def flush_output():
    OUT.flush()
    ERR.flush()


def emit_other(obj):
    flush_output()
    emit(obj)


def ticker():
    while True:
        time.sleep(0.05)
        OUT.flush(idle_only=True)
        ERR.flush(idle_only=True)


SYNC = b"\x00cove-sync\x00"


class PipeReader(threading.Thread):
    """Reads fd (the read end of the pipe that is now fd 1 or 2) into a Coalescer; a SYNC
    marker written through the pipe tells that everything before it was read."""

    def __init__(self, fd, sink):
        super().__init__(daemon=True)
        self.fd, self.sink, self.pending, self.synced = fd, sink, b"", threading.Event()

    def run(self):
        while True:
            try:
                data = os.read(self.fd, 65536)
            except InterruptedError:
                continue
            if not data:
                return
            self.pending += data
            while True:
                i = self.pending.find(SYNC)
                if i < 0:
                    break
                self._text(self.pending[:i])
                self.pending = self.pending[i + len(SYNC):]
                self.synced.set()
            # keep a possible partial marker and an incomplete UTF-8 sequence for later
            keep = 0
            for k in range(1, len(SYNC)):
                if self.pending.endswith(SYNC[:k]):
                    keep = k
            cut = len(self.pending) - keep
            while cut > 0 and cut > len(self.pending) - keep - 4 and (self.pending[cut - 1] & 0xC0) == 0x80:
                cut -= 1
            if cut > 0 and self.pending[cut - 1] >= 0xC0:
                cut -= 1
            self._text(self.pending[:cut])
            self.pending = self.pending[cut:]

    def _text(self, b):
        if b:
            self.sink.add(b.decode("utf-8", "replace"))


def redirect_std():
    readers = []
    for fd, sink in ((1, OUT), (2, ERR)):
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        t = PipeReader(r, sink)
        t.start()
        readers.append((fd, t))
    sys.stdout = Writer(OUT, 1)
    sys.stderr = Writer(ERR, 2)
    return readers


def sync_output(readers):
    """Waits until the readers have seen everything written to fd 1 and 2 so far."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    for fd, t in readers:
        t.synced.clear()
        try:
            os.write(fd, SYNC)
        except OSError:
            continue
        t.synced.wait(2)
    flush_output()


# ---- results (§5.3) ----

FORMATS = {
    "text/plain": "text", "text/html": "html", "text/markdown": "markdown",
    "image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpeg", "application/pdf": "pdf",
    "text/latex": "latex", "application/json": "json", "application/javascript": "javascript",
}
REPRS = [("_repr_html_", "html"), ("_repr_markdown_", "markdown"), ("_repr_svg_", "svg"),
         ("_repr_png_", "png"), ("_repr_jpeg_", "jpeg"), ("_repr_pdf_", "pdf"),
         ("_repr_latex_", "latex"), ("_repr_json_", "json"), ("_repr_javascript_", "javascript")]


def text_of(v):
    s = repr(v)
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        s = s[1:-1]
    return s


def encode_binary(fmt, data):
    if isinstance(data, (bytes, bytearray)):
        return base64.b64encode(bytes(data)).decode()
    if isinstance(data, str) and fmt in ("png", "jpeg", "pdf"):
        return data.replace("\n", "")
    return data


def formats_of(v):
    out = {}
    bundle = None
    if hasattr(v, "_repr_mimebundle_"):
        try:
            bundle = v._repr_mimebundle_()
            if isinstance(bundle, tuple):
                bundle = bundle[0]
        except Exception:
            bundle = None
    if isinstance(bundle, dict):
        for mime, data in bundle.items():
            key = FORMATS.get(mime)
            if key:
                out[key] = encode_binary(key, data)
            else:
                out.setdefault("extra", {})[mime] = data
    for meth, key in REPRS:
        if key in out or not hasattr(v, meth):
            continue
        try:
            data = getattr(v, meth)()
        except Exception:
            continue
        if data is None:
            continue
        if isinstance(data, tuple):
            data = data[0]
        out[key] = encode_binary(key, data)
    if "text" not in out:
        out["text"] = text_of(v)
    return out


def emit_result(v, main):
    line = {"type": "result", "is_main_result": main}
    line.update(formats_of(v))
    emit_other(line)


def display(*objs, **_kw):
    for o in objs:
        emit_result(o, False)


def emit_figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    import io
    for num in plt.get_fignums():
        fig = plt.figure(num)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        w, h = fig.get_size_inches() * fig.dpi
        text = "<Figure size %dx%d with %d Axes>" % (round(w), round(h), len(fig.axes))
        emit_other({"type": "result", "is_main_result": False, "text": text,
                    "png": base64.b64encode(buf.getvalue()).decode()})
    plt.close("all")


def setup_matplotlib():
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def show(*_a, **_kw):
            emit_figures()
        plt.show = show
    except Exception:
        pass


# ---- the Python kernel ----

class UsageError(Exception):
    pass


def emit_error(name, value, tb):
    emit_other({"type": "error", "name": name, "value": value, "traceback": tb})


def user_traceback(e):
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def run_magics(code, env):
    """`!cmd` lines run in bash; `%cd dir` changes directory; other magics are errors."""
    lines = []
    for line in code.split("\n"):
        s = line.strip()
        if s.startswith("!"):
            lines.append("%s__cove_shell(%r)" % (line[:len(line) - len(line.lstrip())], s[1:]))
        elif s.startswith("%cd"):
            lines.append("%s__cove_cd(%r)" % (line[:len(line) - len(line.lstrip())], s[3:].strip()))
        elif s.startswith("%"):
            raise UsageError("Line magic function `%s` not found." % s.split()[0])
        else:
            lines.append(line)
    return "\n".join(lines)


def shell(cmd):
    sys.stdout.flush()
    sys.stderr.flush()
    subprocess.run(["/bin/bash", "-c", cmd])


def chdir(d):
    os.chdir(os.path.expanduser(d or "~"))


def execute(req, glb, readers):
    code = textwrap.dedent(req.get("code") or "")
    env = req.get("env_vars") or {}
    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        os.environ[k] = str(v)
    try:
        try:
            src = run_magics(code, env)
            tree = ast.parse(src, filename="<cell>")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, "<cell>", "exec"), glb)
            value = eval(compile(last, "<cell>", "eval"), glb) if last is not None else None
            sync_output(readers)
            emit_figures()
            if value is not None:
                emit_result(value, True)
        except UsageError as e:
            sync_output(readers)
            emit_error("UsageError", str(e), "UsageError: %s\n" % e)
        except KeyboardInterrupt as e:
            sync_output(readers)
            emit_error("KeyboardInterrupt", "", user_traceback(e))
        except BaseException as e:  # SystemExit too: the context stays
            sync_output(readers)
            emit_error(type(e).__name__, str(e), user_traceback(e))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            plt = sys.modules.get("matplotlib.pyplot")
            if plt is not None:
                plt.close("all")
        except Exception:
            pass


def kernel():
    readers = redirect_std()
    threading.Thread(target=ticker, daemon=True).start()
    setup_matplotlib()
    import builtins
    builtins.display = display
    glb = {"__name__": "__main__", "__builtins__": builtins, "__cove_shell": shell,
           "__cove_cd": chdir, "display": display}
    count = 0
    stdin = sys.stdin.buffer
    while True:
        try:
            line = stdin.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return
        try:
            req = json.loads(line)
        except ValueError:
            continue
        CURRENT["id"] = str(req.get("id") or "-")
        count += 1
        try:
            emit({"type": "number_of_executions", "execution_count": count})
            execute(req, glb, readers)
            sync_output(readers)
        except KeyboardInterrupt:
            sync_output(readers)
            emit_error("KeyboardInterrupt", "", "KeyboardInterrupt\n")
        emit({"type": "end_of_execution"})


# ---- one-shot languages ----

# JavaScript and TypeScript (§5.3): a driver module runs the cell as an ES module. It finds
# the cell's last top-level statement with node's own parser (acorn, which node carries and
# exposes to --expose-internals) and, when that is an expression statement, rewrites it to keep
# its value; TypeScript is first compiled by tsx's esbuild, so a syntax error is reported before
# anything runs. The value (awaited when it is a promise) is reported, one JSON line appended
# to the file COVE_REPORT_FILE (a file: tsx runs the driver in a child process of its own, which
# gets no other descriptor), as it is (strings) or as util.inspect prints it; an uncaught
# exception as its name, message and stack. Without acorn (a node that no longer carries it) the cell runs without a value.
JS_DRIVER = r"""
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [lang, src] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const KEY = Symbol.for('cove.result');
const report = (o) => { try { fs.appendFileSync(process.env.COVE_REPORT_FILE, JSON.stringify(o) + '\n'); } catch (_) {} };
const errorOf = (e) => ({ name: (e && e.name) || 'Error', value: e && e.message !== undefined ? String(e.message) : String(e), traceback: (e && e.stack) || String(e) });
const fail = (e) => { report({ error: errorOf(e) }); process.exit(1); };
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

function esbuild() {
  // tsx's own esbuild, next to the tsx on PATH
  for (const dir of (process.env.PATH || '').split(':')) {
    try {
      const tsx = fs.realpathSync(path.join(dir || '.', 'tsx'));
      return createRequire(tsx)('esbuild');
    } catch (_) {}
  }
  return null;
}

function withResult(code) {
  let acorn, tree;
  try { acorn = require('internal/deps/acorn/acorn/dist/acorn'); } catch (_) { return code; }
  try {
    tree = acorn.parse(code, { ecmaVersion: 'latest', sourceType: 'module', allowAwaitOutsideFunction: true, allowHashBang: true });
  } catch (_) { return code; } // a syntax error: the import below reports it
  const last = tree.body[tree.body.length - 1];
  if (!last || last.type !== 'ExpressionStatement' || last.directive === 'use strict') return code;
  const e = last.expression;
  return code.slice(0, last.start) + 'globalThis[Symbol.for("cove.result")] = (' + code.slice(e.start, e.end) + ');' + code.slice(last.end);
}

let code = fs.readFileSync(src, 'utf8');
if (lang === 'typescript') {
  const eb = esbuild();
  if (eb) {
    try {
      code = eb.transformSync(code, { loader: 'ts', format: 'esm', target: 'esnext', sourcefile: 'cell.ts' }).code;
    } catch (e) {
      const first = e.errors && e.errors[0];
      const where = first && first.location ? ` (${first.location.line}:${first.location.column})` : '';
      report({ error: { name: 'SyntaxError', value: (first ? first.text : String(e.message)) + where, traceback: String(e.message) } });
      process.exit(1);
    }
  }
}
const cell = path.join(path.dirname(src), 'cell.mjs');
fs.writeFileSync(cell, withResult(code));
try {
  await import(pathToFileURL(cell).href);
  let v = globalThis[KEY];
  if (v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function') v = await v;
  if (v !== undefined) report({ result: typeof v === 'string' ? v : util.inspect(v) });
} catch (e) {
  fail(e);
}
"""


def oneshot(lang):
    threading.Thread(target=ticker, daemon=True).start()
    req = json.loads(sys.stdin.buffer.readline() or b"{}")
    CURRENT["id"] = str(req.get("id") or "-")
    code = req.get("code") or ""
    cwd = req.get("cwd") or os.getcwd()
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (req.get("env_vars") or {}).items()})
    emit({"type": "number_of_executions", "execution_count": int(req.get("count") or 1)})
    tmp = tempfile.mkdtemp(prefix=".cove-interp-")
    try:
        ext = {"javascript": "js", "typescript": "ts", "bash": "sh", "r": "R", "java": "jsh"}[lang]
        path = os.path.join(tmp, "cell." + ext)
        if lang in ("javascript", "typescript"):
            driver = os.path.join(tmp, "driver.mjs")
            with open(driver, "w") as f:
                f.write(JS_DRIVER)
            with open(path, "w") as f:
                f.write(code)
            # tsx runs the TypeScript driver, so that the cell's own imports of .ts files work
            argv = ["node" if lang == "javascript" else "tsx", "--expose-internals", driver, lang, path]
        elif lang == "bash":
            with open(path, "w") as f:
                f.write(code)
            argv = ["bash", path]
        elif lang == "r":
            with open(path, "w") as f:
                f.write(code)
            argv = ["Rscript", path]
        else:
            with open(path, "w") as f:
                f.write(code + "\n/exit\n")
            argv = ["jshell", "--execution", "local", "-q", path]
        report_file = os.path.join(tmp, "report.jsonl")
        env["COVE_REPORT_FILE"] = report_file
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)

        def interrupted(*_a):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        signal.signal(signal.SIGINT, interrupted)
        signal.signal(signal.SIGTERM, interrupted)
        fds = {p.stdout.fileno(): OUT, p.stderr.fileno(): ERR}
        while fds:
            ready, _, _ = select.select(list(fds), [], [])
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    del fds[fd]
                else:
                    fds[fd].add(data.decode("utf-8", "replace"))
        rc = p.wait()
        flush_output()
        try:
            with open(report_file, "rb") as f:
                report = f.read(16 << 20)
        except OSError:
            report = b""
        for line in report.decode("utf-8", "replace").splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if "result" in o:
                emit_other({"type": "result", "is_main_result": True, "text": o["result"]})
            if "error" in o:
                e = o["error"]
                emit_error(str(e.get("name", "Error")), str(e.get("value", "")), str(e.get("traceback", "")))
        if rc < 0:
            emit_error("KeyboardInterrupt" if rc == -signal.SIGKILL else "Killed",
                       "signal %d" % -rc, "")
        elif rc != 0 and lang in ("bash", "r", "java"):
            emit_error("ExitCodeError", "exit status %d" % rc, "")
        elif rc != 0 and not report:
            emit_error("ExitCodeError", "exit status %d" % rc, "")
    except FileNotFoundError as e:
        flush_output()
        emit_error("RuntimeError", "language '%s' is not available in this sandbox: %s" % (lang, e), "")
    finally:
        subprocess.run(["rm", "-rf", tmp])
    emit({"type": "end_of_execution"})


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "oneshot":
        oneshot(sys.argv[2])
    else:
        kernel()
