"""The sandbox's audit hook holds on its own: user code can neither reach its state nor run
inside it, and monkeypatching the standard library cannot make an outside path look inside.

These run the bootstrap directly, without the OS layer (no bubblewrap), so a secret file the OS
would hide anyway stays readable unless the hook itself refuses it.
"""

from __future__ import annotations

import dis
import subprocess
from pathlib import Path
from types import CodeType

import pytest

from tierwise.sandbox import SandboxLimits, run_python
from tierwise.sandbox.audit_boot import BOOT
from tierwise.sandbox.bwrap import interpreter

SECRET = "TOP-SECRET-CONTENT"

# Shared by the attacks: `grab` keeps whatever the frames it is given (and their callers, down
# to the script's own) hold that could be the hook's state (a re-entrancy flag, a function with
# closure cells); `steal` then turns every such flag on, points every path-like cell at "/" and
# tries the secret.
ATTACK = r'''
import os, sys, types
SECRET = SECRET_PATH
CWD = os.getcwd()
grabbed = []

def grab(frame, whole_stack=False):
    # Unless told otherwise, stop at this script's own frames: what lies between is the hook.
    while frame is not None and (whole_stack or frame.f_code.co_filename != __file__):
        grabbed.extend(v for v in list(frame.f_locals.values())
                       if isinstance(v, (list, types.FunctionType)))
        frame = frame.f_back

def switch_off():
    for value in grabbed:
        cells = [value] if isinstance(value, list) else [c.cell_contents for c in value.__closure__ or ()]
        for v in cells:
            if isinstance(v, list) and v and all(isinstance(x, bool) for x in v):
                v[:] = [True] * len(v)
        for c in () if isinstance(value, list) else value.__closure__ or ():
            if isinstance(c.cell_contents, str) and c.cell_contents.startswith("/"):
                c.cell_contents = "/"
            elif isinstance(c.cell_contents, tuple) and all(isinstance(x, str) for x in c.cell_contents):
                c.cell_contents = ("/",)

class Evil(str):
    """A path whose every method grabs the frames of whoever calls it."""

def _spy(name):
    real = getattr(str, name)
    def method(self, *args, **kwargs):
        grab(sys._getframe().f_back)
        return real(self, *args, **kwargs)
    return method

for _name in ("startswith", "endswith", "split", "rsplit", "partition", "rpartition", "__getitem__",
              "__add__", "__eq__", "__hash__", "__contains__", "__iter__", "__len__", "__repr__",
              "__str__", "__format__", "encode", "join", "replace", "strip", "rstrip"):
    setattr(Evil, _name, _spy(_name))

class Sneaky:
    """Not a path at all: any use of it inside the hook is user code running there."""
    def __fspath__(self):
        grab(sys._getframe().f_back)
        return "x.txt"
    def __bool__(self):
        grab(sys._getframe().f_back)
        return True
    def __iter__(self):
        grab(sys._getframe().f_back)
        return iter("r")
    def __contains__(self, item):
        grab(sys._getframe().f_back)
        return False

class SneakyInt(int):
    def __and__(self, other):
        grab(sys._getframe().f_back)
        return 0

def steal():
    switch_off()
    try:
        print(open(SECRET).read())
    except PermissionError:
        print("DENIED")
'''


@pytest.fixture
def secret(tmp_path: Path) -> str:
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text(SECRET)
    return str(path)


def run_hooked(tmp_path: Path, secret: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` under the bootstrap (audit hook only) with the sandbox's own interpreter."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.py").write_text(ATTACK.replace("SECRET_PATH", repr(secret)) + code)
    return subprocess.run([interpreter(), "-I", "-S", "-c", BOOT, str(work), str(work / "main.py")],
                          cwd=work, env={}, capture_output=True, text=True, timeout=60)


def assert_refused(r: subprocess.CompletedProcess[str]) -> None:
    assert SECRET not in r.stdout + r.stderr
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "DENIED", r.stdout + r.stderr


def test_the_hook_alone_refuses_the_secret(tmp_path: Path, secret: str) -> None:
    assert_refused(run_hooked(tmp_path, secret, "steal()\n"))


def test_no_frame_on_the_user_stack_holds_the_hook_state(tmp_path: Path, secret: str) -> None:
    """The frames below the user's script (bootstrap, runpy) hold nothing that switches the hook off."""
    assert_refused(run_hooked(tmp_path, secret, "grab(sys._getframe(), whole_stack=True)\nsteal()\n"))


def test_a_refusal_traceback_holds_nothing_that_switches_the_hook_off(tmp_path: Path, secret: str) -> None:
    """The hook's own frame is in the traceback of every refusal: its locals must all be inert."""
    code = ("try:\n    open(SECRET)\nexcept PermissionError as e:\n    tb = e.__traceback__\n"
            "    while tb is not None:\n        grab(tb.tb_frame)\n        tb = tb.tb_next\nsteal()\n")
    assert_refused(run_hooked(tmp_path, secret, code))


@pytest.mark.parametrize("trigger", [
    "open(Evil('x.txt'), 'w').close()",
    "os.listdir(Evil('.'))",
    "__import__(Evil('json'))",
    "open(Evil('x.txt'), 'w').close()\nos.rename(Evil('x.txt'), Evil('y.txt'))",
    "class P:\n    def __fspath__(self):\n        return Evil('x.txt')\nopen(P(), 'w').close()",
    "sys.audit('open', Sneaky(), 'r', 0)",
    "sys.audit('open', 'x.txt', Sneaky(), None)",
    "sys.audit('open', 'x.txt', 'r', SneakyInt(0))",
    "sys.audit('os.listdir', Sneaky())",
    "sys.audit('import', Evil('json'), None, [], [], [])",
    "import builtins\nclass Grab(PermissionError):\n    def __init__(self, *a):\n"
    "        grab(sys._getframe().f_back)\n        super().__init__(*a)\nbuiltins.PermissionError = Grab\n"
    "try:\n    open(SECRET)\nfinally:\n    builtins.PermissionError = Grab.__bases__[0]",
], ids=["open-str-subclass", "listdir-str-subclass", "import-str-subclass", "rename-str-subclass",
        "fspath-returns-str-subclass", "fake-open-pathlike", "fake-open-mode", "fake-open-flags",
        "fake-listdir-pathlike", "fake-import-str-subclass", "patched-PermissionError"])
def test_user_code_never_runs_inside_the_hook(tmp_path: Path, secret: str, trigger: str) -> None:
    code = f"try:\n{_indent(trigger)}\nexcept Exception as e:\n    print('refused:', type(e).__name__)\nsteal()\n"
    assert_refused(run_hooked(tmp_path, secret, code))


@pytest.mark.parametrize("patch", [
    "import posixpath\nposixpath.realpath = lambda p, **k: CWD + '/x'",
    "os.fspath = lambda p: CWD + '/x'",
    "import stat\nreal_lstat, real_readlink = os.lstat, os.readlink\n"
    "class Link:\n    st_mode = stat.S_IFLNK\n"
    "os.lstat = lambda p, *a, **k: Link() if p == SECRET else real_lstat(p, *a, **k)\n"
    "os.readlink = lambda p, *a, **k: CWD + '/x' if p == SECRET else real_readlink(p, *a, **k)",
    "import builtins\nreal = builtins.isinstance\n"
    "builtins.isinstance = lambda o, t: o == SECRET or real(o, t)",
    "import builtins\nbuiltins.any = lambda it: True",
], ids=["posixpath.realpath", "os.fspath", "os.lstat+os.readlink", "builtins.isinstance", "builtins.any"])
def test_monkeypatching_cannot_make_an_outside_path_look_inside(tmp_path: Path, secret: str, patch: str) -> None:
    code = f"{patch}\ntry:\n    print(open(SECRET).read())\nexcept PermissionError:\n    print('DENIED')\n"
    assert_refused(run_hooked(tmp_path, secret, code))


def test_a_patched_getcwd_cannot_move_a_relative_path_inside(tmp_path: Path, secret: str) -> None:
    code = ("rel = os.path.relpath(SECRET)\nos.getcwd = lambda: CWD + '/a/b/c'\n"
            "try:\n    print(open(rel).read())\nexcept PermissionError:\n    print('DENIED')\n")
    assert_refused(run_hooked(tmp_path, secret, code))


def test_symlinks_are_followed_as_the_kernel_does(tmp_path: Path, secret: str) -> None:
    """`a` points at p/q/../.. (the workdir) when made; once p/q is a link to p it leads outside."""
    code = ("os.makedirs('p/q')\nos.symlink('p/q/../..', 'a')\nos.rmdir('p/q')\nos.symlink('.', 'p/q')\n"
            "try:\n    print(open('a/outside/secret.txt').read())\nexcept PermissionError:\n    print('DENIED')\n")
    assert_refused(run_hooked(tmp_path, secret, code))


@pytest.mark.parametrize("how", ["os.open", "posix.open", "io.open-opener", "os.mkdir"])
def test_a_folder_descriptor_cannot_move_a_relative_path_inside(tmp_path: Path, secret: str, how: str) -> None:
    """The `open` event leaves out os.open's dir_fd: from a working folder deeper than the standard
    library's, `../` x depth climbs out of the library's folder for the kernel, and stays inside
    the work folder for a check made from the working folder (with `allow_weak`, this read the
    split checker's tests from its folder)."""
    code = ("import posix, io\nlib = os.path.dirname(os.__file__)\nos.makedirs('a/' * (lib.count('/') + 2))\n"
            "os.chdir('a/' * (lib.count('/') + 2))\nup = '../' * lib.count('/') + SECRET.lstrip('/')\n"
            "fd = posix.open(lib, os.O_RDONLY)\n"
            "try:\n")
    code += {
        "os.open": "    print(os.read(os.open(up, os.O_RDONLY, dir_fd=fd), 100).decode())\n",
        "posix.open": "    print(os.read(posix.open(up, os.O_RDONLY, dir_fd=fd), 100).decode())\n",
        "io.open-opener": "    print(io.open(up, opener=lambda p, f: posix.open(p, f, dir_fd=fd)).read())\n",
        "os.mkdir": ("    os.mkdir(up.rpartition('/')[0] + '/made', dir_fd=fd)\n"
                     "    print(open(os.path.dirname(SECRET) + '/made/../secret.txt').read())\n"),
    }[how]
    code += "except PermissionError:\n    print('DENIED')\n"
    r = run_hooked(tmp_path, secret, code)
    assert_refused(r)
    assert not (tmp_path / "outside" / "made").exists()


def test_the_hook_looks_up_no_global_or_builtin_name() -> None:
    """User code can rebind any module or builtins attribute: the hook uses only what it bound."""
    installer = next(c for c in compile(BOOT, "<boot>", "exec").co_consts if isinstance(c, CodeType))
    hook = next(c for c in installer.co_consts if isinstance(c, CodeType) and c.co_name == "hook")
    assert [i.argval for i in dis.get_instructions(hook) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")] == []


async def test_ordinary_path_code_still_works() -> None:
    code = """
import os, pathlib, glob, shutil
d = pathlib.Path('d')
d.mkdir()
(d / 'a.txt').write_text('hello')
with open(d / 'a.txt') as fh:
    assert fh.read() == 'hello'
os.close(os.open(d / 'a.txt', os.O_RDONLY))
assert [p.name for p in d.iterdir()] == ['a.txt'] and len(list(d.glob('*.txt'))) == 1
(d / 'a.txt').rename(d / 'b.txt')
(d / 'b.txt').touch()
class Name(str):
    pass
open(Name('c.txt'), 'w').write('x')
assert open(b'c.txt').read() == 'x' and sorted(os.listdir()) == ['c.txt', 'd', 'main.py']
assert sorted(glob.glob('*.txt')) == ['c.txt']
os.symlink('d', 'link')
assert (pathlib.Path('link') / 'b.txt').exists() and open('link/b.txt').read() == 'hello'
shutil.rmtree('d')
os.remove('link')
import json, collections, asyncio, decimal
assert open(os.__file__).read(10)
print('OK')
"""
    r = await run_python(code, limits=SandboxLimits(wall_s=20, cpu_s=5, memory_mb=256))
    assert r.ok, r.stderr
    assert r.stdout.strip() == "OK"


def _indent(code: str) -> str:
    return "\n".join("    " + line for line in code.splitlines())
