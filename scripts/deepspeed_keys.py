#!/usr/bin/env python3
"""Lists the keys of a DeepSpeed JSON config that DeepSpeed reads.

Usage: scripts/deepspeed_keys.py DEEPSPEED_CHECKOUT COMMIT > tests/data/deepspeed-keys.txt

Reads without importing: the string constants of deepspeed/runtime/constants.py
(top-level keys and the keys of the bf16/fp16 sections), the fields and aliases
of DeepSpeedZeroConfig (deepspeed/runtime/zero/config.py, "zero_optimization"),
the ACT_CHKPT_* constants (deepspeed/runtime/activation_checkpointing/config.py,
"activation_checkpointing") and the pipeline defaults of get_pipeline_config
(deepspeed/runtime/config.py, "pipeline").  One "section.key" (or "key" at the
top level) per line.
"""
import ast
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
rt = root / "deepspeed/runtime"
keys = set()


def str_constants(path, prefix=""):
    out = {}
    for n in ast.parse(path.read_text()).body:
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) \
                and isinstance(n.value.value, str):
            for t in n.targets:
                if isinstance(t, ast.Name) and t.id.startswith(prefix):
                    out[t.id] = n.value.value
    return out


const = str_constants(rt / "constants.py")
top = [v for k, v in const.items()
       if not k.endswith(("_FORMAT", "_DEFAULT")) and "\n" not in v and " " not in v]
keys.update(top)
for sect in ("bf16", "fp16"):
    for k, v in const.items():
        if k.startswith(("BFLOAT16_" if sect == "bf16" else "FP16_")) and not k.endswith(
                ("_FORMAT", "_DEFAULT")) and "\n" not in v:
            keys.add(f"{sect}.{v}")

zero = ast.parse((rt / "zero/config.py").read_text())
for n in zero.body:
    if isinstance(n, ast.Assign):
        for t in n.targets:
            if getattr(t, "id", "") == "ZERO_OPTIMIZATION":
                keys.add(n.value.value)
    if isinstance(n, ast.ClassDef) and n.name == "DeepSpeedZeroConfig":
        for s in n.body:
            if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name):
                keys.add("zero_optimization." + s.target.id)
                if isinstance(s.value, ast.Call):
                    for k in s.value.keywords:
                        if k.arg == "alias" and isinstance(k.value, ast.Constant):
                            keys.add("zero_optimization." + k.value.value)

act = str_constants(rt / "activation_checkpointing/config.py", "ACT_CHKPT")
keys.add(act.pop("ACT_CHKPT"))
for k, v in act.items():
    if not k.endswith(("_FORMAT", "_DEFAULT")):
        keys.add("activation_checkpointing." + v)

cfg = ast.parse((rt / "config.py").read_text())
for n in ast.walk(cfg):
    if isinstance(n, ast.FunctionDef) and n.name == "get_pipeline_config":
        for s in ast.walk(n):
            if isinstance(s, ast.Dict):
                keys.add("pipeline")
                keys.update("pipeline." + k.value for k in s.keys if isinstance(k, ast.Constant))

print("# Keys of a DeepSpeed config that DeepSpeed reads, deepspeedai/DeepSpeed commit")
print(f"# {sys.argv[2]}, listed by scripts/deepspeed_keys.py.")
for k in sorted(keys):
    print(k)
