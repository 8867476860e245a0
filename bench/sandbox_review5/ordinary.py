"""Ordinary model code in the weak sandbox or bubblewrap: ordinary.py SRC MODE (weak, weak-range, weak-threads, weak-nouserns, bwrap)."""
import asyncio
import sys

sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, bwrap, run_python

mode = sys.argv[2]
if mode != "bwrap":
    bwrap.bwrap_path = lambda: None
kw = {}
if "range" in mode:
    kw["run_as_range"] = "61184-61439"
sandbox.configure(allow_weak=True, **kw)
if "nouserns" in mode:
    backend.weak_read_only_host = lambda: False
CODE = r'''
import os, sys, tempfile, pathlib, resource, time, datetime, platform, uuid, random, shutil, getpass, locale
def t(name, fn):
    try:
        print(name, "OK", repr(fn())[:70])
    except BaseException as e:
        print(name, "ERR", type(e).__name__, str(e)[:90])
t("cpu_count", os.cpu_count)
t("home", pathlib.Path.home)
t("expanduser", lambda: os.path.expanduser("~"))
t("gettempdir", tempfile.gettempdir)
def tf():
    with tempfile.TemporaryFile() as f:
        f.write(b"x"); return f.name
t("TemporaryFile", tf)
t("mkdtemp", tempfile.mkdtemp)
t("NamedTemp", lambda: tempfile.NamedTemporaryFile().name)
t("rlimit", lambda: resource.getrlimit(resource.RLIMIT_AS))
t("rusage", lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
t("executable", lambda: sys.executable)
t("platform", platform.platform)
t("uuid4", uuid.uuid4)
t("now", lambda: datetime.datetime.now().isoformat())
t("getuser", getpass.getuser)
t("disk", lambda: shutil.disk_usage("."))
t("cwd", os.getcwd)
t("listdir", lambda: os.listdir("."))
t("devnull", lambda: open(os.devnull, "w").write("x"))
t("urandom", lambda: len(os.urandom(8)))
def mp():
    import multiprocessing
    return multiprocessing.cpu_count()
t("mp.cpu_count", mp)
def pool():
    import multiprocessing
    with multiprocessing.Pool(2) as p:
        return p.map(abs, [-1, -2])
t("mp.Pool", pool)
def sub():
    import subprocess
    return subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True).stdout
t("subprocess", sub)
def th():
    import threading
    out = []
    x = threading.Thread(target=lambda: out.append(1)); x.start(); x.join(); return out
t("thread", th)
def cf():
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        return list(ex.map(abs, [-1, -2]))
t("ThreadPool", cf)
t("getloadavg", os.getloadavg)
t("sched_getaffinity", lambda: len(os.sched_getaffinity(0)))
t("write_big", lambda: open("big", "wb").write(b"x" * (1 << 20)))
t("many_files", lambda: [open(f"f{i}", "w").close() for i in range(200)] and len(os.listdir(".")))
'''
files = {"helper.py": "X = 1\n"}
limits = SandboxLimits(wall_s=60, threads="threads" in mode)
r = asyncio.run(run_python(CODE, files=files, limits=limits, audit_hook="nohook" not in mode))
print("MODE", mode, "RC", r.returncode, "RUNS_AS", r.runs_as)
print("LAYERS", r.layers)
print(r.stdout)
print("STDERR", r.stderr[-1500:])
