import os, statistics, time
from tierwise.sandbox import bwrap, identity
user = identity.target()
prepared = identity.switcher(user, identity.plan(bwrap.layout().binds, user))
bare = identity.switcher(user, None)
def once(p):
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        identity.switch(p)
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - t
for name, p in (("fork only", None), ("fork + uid switch", bare), ("fork + staging + uid switch", prepared)) * 2:
    ts = [once(p) for _ in range(300)]
    print(f"{name}: median {statistics.median(ts)*1e6:.0f} us, min {min(ts)*1e6:.0f} us")
t = time.perf_counter(); [identity.plan(bwrap.layout().binds, user) for _ in range(10000)]
print(f"plan (remembered): {(time.perf_counter()-t)/10000*1e6:.2f} us")
