"""The interpreter layer of the sandbox: an audit hook (PEP 578) installed before user code runs.

Defence in depth only: it refuses sockets, process creation, ctypes, native extensions from the
run's own folder, modules that open files in C with no event (readline; sqlite3 in the weak
sandbox), gc introspection (the way to reach its own state), file opens outside the run's folder
and the readable library folders, and every filesystem change outside the run's folder (a
relative path read from a folder descriptor is refused: the `open` event leaves out os.open's
dir_fd; os.mkfifo and os.mknod raise no event: the seccomp filter, loaded in the weak sandbox
too, refuses them). Crafted bytecode (a code object built or unmarshalled by the code) can still
corrupt the interpreter's memory and leave the hook behind. Its state lives only in the hook's closure,
with every function it calls bound before user code runs, and it never calls a method of a user
object. CPython says audit hooks are no security boundary; the OS layer (bubblewrap + seccomp,
see tierwise.sandbox.bwrap) holds without it, and the tests run every escape with it off too.
"""

# The bootstrap runs as `python -I -S -c BOOT <workdir> <script> [readable folder...] -- [arg...]`: it installs the audit hook,
# then runs the user's script as __main__ from module level, after the installer has returned
# and been deleted, so neither the module globals nor any frame below the user's code hold the
# hook's state.
BOOT = r'''
def _tierwise_install(root, script, *rest):
    # Installs the hook and returns before the script runs, so no frame under the user's code
    # holds the hook's state: it lives only in the closure cells of `hook`, which nothing else
    # refers to (and gc introspection, the one way to find it, is refused).
    import os, runpy, signal, sys
    # `rest`: folders readable for this run, then "--" and the script's own arguments.
    extra = rest[:rest.index("--")] if "--" in rest else rest
    args = rest[len(extra) + 1:]
    root = os.path.realpath(root)
    readable = {os.path.realpath(p) for p in sys.path if p and os.path.exists(p)}
    readable.add(os.path.realpath(os.path.dirname(os.__file__)))
    readable.update(os.path.realpath(p) for p in extra)  # folders bound read-only for this run
    # Allowed folders as prefixes ending in "/": a resolved path P is inside when P + "/" starts with one.
    mine = (root.rstrip("/") + "/",)
    libraries = tuple(sorted(r.rstrip("/") + "/" for r in readable))
    seen = mine + libraries
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    write_modes = frozenset("wax+")
    banned = frozenset({
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.popen",
        "subprocess.Popen", "os.kill", "os.killpg", "pty.spawn", "os.setuid", "os.setgid",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.addaudithook",
        "webbrowser.open", "os.add_dll_directory", "sys.setprofile", "sys.settrace",
    })
    # subprocess itself stays importable (asyncio needs it); creating a process is refused above.
    # readline reads and writes any file in C with no audit event (write_history_file put lines of
    # the code's choosing in a file outside the folder); no run has a terminal to use it with.
    # The weak sandbox, where the hook alone guards files, refuses sqlite3 too: `ATTACH` opens or
    # makes any database file from SQL (the gateway's ledger was read) and raises no event.
    banned_modules = frozenset({"ctypes", "_ctypes", "readline", *globals().get("TIERWISE_ALSO_BANNED", ())})
    mutating = frozenset({
        "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
        "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod", "shutil.rmtree", "shutil.copyfile",
        "shutil.copymode", "shutil.copystat", "shutil.move", "shutil.chown", "shutil.make_archive",
        "shutil.unpack_archive", "os.setxattr", "os.removexattr",
    })
    two_paths = frozenset({"os.rename", "os.link", "os.symlink"})
    # Where an event carries the `dir_fd` its relative paths are read from (-1: the working folder).
    dir_fd_at = {"os.remove": (1,), "os.rmdir": (1,), "os.mkdir": (2,), "os.chmod": (2,), "os.utime": (3,),
                 "os.chown": (3,), "os.rename": (2, 3), "os.link": (2, 3), "os.symlink": (2,)}
    no_fd = ()
    dir_fds_of = dir_fd_at.get
    listing = frozenset({"os.listdir", "os.scandir", "glob.glob", "glob.glob/2", "os.chdir",
                         "os.getxattr", "os.listxattr"})
    # Everything the hook calls is bound here, before user code runs: the user can rebind os.*,
    # posixpath.* and builtins.* but not these. The hook never calls a method of a user object
    # (a str subclass's, an __fspath__, an int's __and__): str and bytes subclasses are copied to
    # exact ones through the base type, anything else is not a path it can check.
    getcwd, readlink, Denied, NotALink = os.getcwd, os.readlink, PermissionError, OSError
    type_, subclass, str_, bytes_, int_ = type, issubclass, str, bytes, int
    copy_str, copy_bytes, partition, and_int = str.__getitem__, bytes.__getitem__, str.partition, int.__and__
    whole, decode, fsenc, fserr = slice(None), bytes.decode, sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    decode(b"", fsenc, fserr)  # caches the codec: no codec search function ever runs in the hook

    # No re-entrancy flag: nothing the hook calls raises audit events, and a flag would be state
    # worth reaching (and a window for other threads and signal handlers while it is set).
    def hook(event, args):
        if event in banned or event.startswith(("socket.", "ctypes.")):
            raise Denied(f"sandbox: {event} is not allowed")
        # A relative path is checked from the working folder: only right when the call reads it
        # from there. `os.open` (the `open` event with no mode) does not say whether a dir_fd was
        # given, so a relative path is refused there (the os.open left to user code makes it absolute).
        from_cwd = True
        if event == "import":
            name = args[0]
            if subclass(type_(name), str_) and partition(copy_str(name, whole), ".")[0] in banned_modules:
                raise Denied(f"sandbox: import {copy_str(name, whole)!r} is not allowed")
            if args[1] is None:
                return
            # Only a native extension's import names a file (dlopen: no `open` event, and its code
            # is beyond any hook): from the library folders only, never from the run's own folder,
            # where the code can write one (the weak sandbox read the gateway's environment so).
            paths, allowed = args[1:2], libraries
        elif event == "open":
            path, mode, flags = args
            from_cwd = mode is not None
            if subclass(type_(flags), int_):
                writes = and_int(flags, write_flags) != 0
            else:
                writes = not subclass(type_(mode), str_) or not write_modes.isdisjoint(copy_str(mode, whole))
            paths, allowed = (path,), (mine if writes else seen)
        elif event in listing:
            paths, allowed = args[:1], (mine if event == "os.chdir" else seen)
        elif event in mutating:
            paths, allowed = args[:1], mine
        elif event in two_paths:
            paths, allowed = args[:2], mine
        else:
            return
        for at in dir_fds_of(event, no_fd):
            fd = args[at]
            if type_(fd) is not int_ or fd != -1:
                from_cwd = False
        for path in paths:
            kind = type_(path)
            if path is None:
                path = "."
            elif subclass(kind, int_):
                continue  # a file descriptor
            elif subclass(kind, str_):
                path = copy_str(path, whole)
            elif subclass(kind, bytes_):
                path = decode(copy_bytes(path, whole), fsenc, fserr)
            else:
                # CPython's own path functions pass os.PathLike arguments here already converted;
                # calling __fspath__ ourselves would run user code inside the hook.
                raise Denied(f"sandbox: {event} of a path that is not str or bytes is not allowed")
            # realpath over the bound functions: resolve each symlink as the kernel will.
            if not from_cwd and not path.startswith("/"):
                raise Denied(f"sandbox: {event} of the relative path {path!r} from a folder descriptor is not allowed")
            todo = (path if path.startswith("/") else getcwd() + "/" + path).split("/")[::-1]
            real, hops = "", 0
            while todo:
                name = todo.pop()
                if name == "..":
                    real = real.rpartition("/")[0]
                elif name and name != ".":
                    try:
                        target = readlink(real + "/" + name)
                    except NotALink:  # (or missing: the kernel's own lookup fails on it too)
                        real = real + "/" + name
                        continue
                    hops += 1
                    if hops > 40:  # the kernel's own limit (ELOOP)
                        raise Denied(f"sandbox: {event} {path!r}: too many symbolic links")
                    if target.startswith("/"):
                        real = ""
                    todo += target.split("/")[::-1]
            if not (real + "/").startswith(allowed) or (allowed is libraries and (real + "/").startswith(mine)):
                raise Denied(f"sandbox: {event} {path!r} is not allowed")

    def out_of_cpu(signum, frame):
        # The soft CPU limit: say so (a bare signal death is ambiguous through unshare) and stop.
        os.write(2, b"\nsandbox: CPU time limit exceeded\n")
        os._exit(128 + signal.SIGXCPU)

    signal.signal(signal.SIGXCPU, out_of_cpu)
    real_open, fspath, getcwdb = os.open, os.fspath, os.getcwdb

    def open_from_cwd(path, flags, mode=0o777, *, dir_fd=None):
        # os.open of a relative path, made absolute for the hook (which refuses it relative).
        if dir_fd is None:
            path = fspath(path)
            if type(path) is bytes:
                path = path if path.startswith(b"/") else getcwdb() + b"/" + path
            elif not path.startswith("/"):
                path = getcwd() + "/" + path
        return real_open(path, flags, mode, dir_fd=dir_fd)

    os.open = open_from_cwd
    # The standard library asks this set before it uses dir_fd (shutil.rmtree): none, so it uses paths.
    os.supports_dir_fd.clear()
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    sys.argv = [script, *args]
    sys.addaudithook(hook)

# The script runs from module level once the installer has returned, with no name of ours left.
_tierwise_install(*__import__("sys").argv[1:])
del _tierwise_install
globals().pop("TIERWISE_ALSO_BANNED", None)
__import__("runpy").run_path(__import__("sys").argv[0], run_name="__main__")
'''

# The weak sandbox's bootstrap: the same, with the modules that open files in C without an audit
# event refused as well (there no mount namespace hides the host's files from them).
WEAK_BOOT = 'TIERWISE_ALSO_BANNED = ("_sqlite3", "_posixshmem")\n' + BOOT
