"""review30d: does a config error repeat a key written where a name belongs (pasted, or put there by a
`${VAR}`)? Prints one line per field and form, then the count of errors that hold the key.

    PYTHONPATH=src .venv/bin/python bench/config_error_echo.py
"""
import copy
import os

import yaml

from tierwise.config import parse_config
from tierwise.errors import ConfigError

S = "Zq8vT2mXkP4rN7wL1sH6yB3cF9dJ0gA5"
SK = "sk-ant-api03-" + S
os.environ["UPSTREAM_TOKEN"] = S
os.environ["PLAIN"] = S
LOCAL = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}
BASE = {"providers": {"ollama": LOCAL}, "models": {"qwen": {"provider": "ollama", "model": "q"}},
        "routes": {"main": ["qwen"]}}
LEAKS = [0, 0]


def run(name, mut):
    for val in (S, SK, "${UPSTREAM_TOKEN}", "${PLAIN}", S[:-1]+"x"):
        d = copy.deepcopy(BASE)
        mut(d, val)
        try:
            parse_config(yaml.safe_dump(d))
            res = "OK(accepted)"
        except ConfigError as e:
            m = e.message
            res = ("LEAK " if S[:12] in m or S[-12:] in m else "ok   ") + m.replace("\n"," | ")[:260]
        except Exception as e:
            res = "EXC " + type(e).__name__ + str(e)[:200]
        LEAKS[0] += res.startswith("LEAK")
        LEAKS[1] += 1
        print(f"{name:28s} {val[:10]:10s} {res}")
run("models.provider", lambda d,v: d["models"]["qwen"].__setitem__("provider", v))
run("route target", lambda d,v: d["routes"].__setitem__("main", [v]))
run("default_route", lambda d,v: d.setdefault("server", {}).__setitem__("default_route", v))
run("reference_model", lambda d,v: d.__setitem__("reference_model", v))
run("policy", lambda d,v: d["routes"].__setitem__("main", {"policy": v, "targets": ["qwen"]}))
run("locality", lambda d,v: d["providers"]["ollama"].__setitem__("locality", v))
run("kind", lambda d,v: d["providers"]["ollama"].__setitem__("kind", v))
run("base_url", lambda d,v: d["providers"]["ollama"].__setitem__("base_url", v))
run("base_url http://v@", lambda d,v: d["providers"]["ollama"].__setitem__("base_url", "http://127.0.0.1:9/v1 " + v))
run("headers", lambda d,v: d["providers"]["ollama"].__setitem__("headers", v))
run("header value int", lambda d,v: d["providers"]["ollama"].__setitem__("headers", {"Authorization": [v]}))
run("image_urls", lambda d,v: d["providers"]["ollama"].__setitem__("image_urls", v))
run("cc class", lambda d,v: d["routes"].__setitem__("main", {"policy":"rules","rules":[{"match":{"claude_code":v},"target":"qwen"}],"default":"qwen"}))
run("budget route", lambda d,v: d.__setitem__("budgets", {"limits":[{"name":"b","usd":1,"routes":[v]}]}))
run("budget routes key", lambda d,v: d.__setitem__("budgets", {"routes":{v:{"usd":1}}}))
run("privacy route", lambda d,v: d.__setitem__("privacy", {"routes":{v:{"pii":"local_only"}}, "classes":{"pii":{}}, "ner":{"enabled":False}}))
run("privacy action", lambda d,v: d.__setitem__("privacy", {"policy":{"pii":v}, "classes":{"pii":{}}, "ner":{"enabled":False}}))
run("cache route", lambda d,v: d.__setitem__("cache", {"enabled":True,"routes":{v:{}}}))
run("api_keys routes", lambda d,v: d.__setitem__("server", {"api_keys_env":[{"env":"GW_KEY","routes":[v]}]}))
run("unknown key", lambda d,v: d["providers"]["ollama"].__setitem__(v, 1))
run("price", lambda d,v: d["models"]["qwen"].__setitem__("price", v))
run("max_tokens", lambda d,v: d["models"]["qwen"].__setitem__("context_window", v))
run("region", lambda d,v: d["providers"]["ollama"].__setitem__("region", [v]))
run("server.host", lambda d,v: d.setdefault("server", {}).__setitem__("host", v))
run("server.port", lambda d,v: d.setdefault("server", {}).__setitem__("port", v))
run("ledger.path", lambda d,v: d.__setitem__("ledger", {"path": {"x": v}}))
run("rules match model", lambda d,v: d["routes"].__setitem__("main", {"policy":"rules","rules":[{"match":{"model":v},"target":"qwen"}],"default":"qwen"}))
run("rules target", lambda d,v: d["routes"].__setitem__("main", {"policy":"rules","rules":[{"match":{"tools":True},"target":v}],"default":"qwen"}))
print(f"errors holding the key: {LEAKS[0]} of {LEAKS[1]} cases")
