#!/usr/bin/env python3
"""Lists the command-line flags Megatron-LM's argument parser accepts.

Usage: scripts/megatron_flags.py MEGATRON_CHECKOUT [COMMIT] > tests/data/megatron-flags.txt

Reads megatron/training/arguments.py without importing it: every literal
'--flag' of an add_argument call, and the flags ArgumentGroupFactory makes
from config dataclasses (megatron/training/argument_utils.py): '--field-name'
per field not excluded, and for a bool field whose default is True the
'--no-field-name' and '--disable-field-name' forms instead.
"""
import ast
import pathlib
import subprocess
import sys

root = pathlib.Path(sys.argv[1])
args_py = root / "megatron/training/arguments.py"
tree = ast.parse(args_py.read_text())

flags = set()
for node in ast.walk(tree):
    if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
        for a in node.args:
            if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--"):
                flags.add(a.value)

# every class definition of the repository's python files, by name
classes = {}
for py in root.rglob("*.py"):
    if "test" in py.parts[0:2]:
        continue
    try:
        t = ast.parse(py.read_text())
    except (SyntaxError, UnicodeDecodeError):
        continue
    for n in t.body:
        if isinstance(n, ast.ClassDef):
            classes.setdefault(n.name, n)


def fields(cls_name, seen=None):
    """(name, is_bool, default_true, init) of a dataclass and its bases."""
    seen = seen or set()
    c = classes.get(cls_name)
    if c is None or cls_name in seen:
        return []
    seen.add(cls_name)
    out = []
    for b in c.bases:
        bn = b.id if isinstance(b, ast.Name) else getattr(b, "attr", None)
        if bn:
            out += fields(bn, seen)
    for s in c.body:
        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name):
            ann = ast.unparse(s.annotation)
            if ann.startswith("ClassVar"):
                continue
            init = True
            default = s.value
            if isinstance(default, ast.Call) and getattr(default.func, "id", "") == "field":
                for k in default.keywords:
                    if k.arg == "init" and isinstance(k.value, ast.Constant):
                        init = bool(k.value.value)
                    if k.arg == "default":
                        default = k.value
            is_bool = ann in ("bool", "Optional[bool]")
            dtrue = isinstance(default, ast.Constant) and default.value is True
            out = [f for f in out if f[0] != s.target.id]
            out.append((s.target.id, is_bool, dtrue, init))
    return out


def name_list(node, func):
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant)]
    if isinstance(node, ast.Name):  # a list assigned earlier in the function
        for s in ast.walk(func):
            if isinstance(s, ast.Assign) and any(getattr(t, "id", "") == node.id for t in s.targets):
                return name_list(s.value, func)
    return []


for func in ast.walk(tree):
    if not isinstance(func, ast.FunctionDef):
        continue
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ArgumentGroupFactory":
            cls = node.args[0].id if isinstance(node.args[0], ast.Name) else None
            exclude = []
            for k in node.keywords:
                if k.arg == "exclude":
                    exclude = name_list(k.value, func)
            for name, is_bool, dtrue, init in fields(cls):
                if name in exclude or not init:
                    continue
                dashed = name.replace("_", "-")
                if is_bool and dtrue:
                    flags.update({"--no-" + dashed, "--disable-" + dashed})
                else:
                    flags.add("--" + dashed)

if len(sys.argv) > 2:  # a checkout without .git (git archive): its commit given
    commit = sys.argv[2]
else:
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
print(f"# Flags accepted by Megatron-LM's argument parser (megatron/training/arguments.py),")
print(f"# NVIDIA/Megatron-LM commit {commit}, listed by scripts/megatron_flags.py.")
for f in sorted(flags):
    print(f)
