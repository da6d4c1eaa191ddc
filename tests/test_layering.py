"""The layering rule of docs/design.md §1: loaders and kernels never import the engine, kernels
import neither; checked from every import statement of the source and by importing the lower
layers with the engine made unimportable."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"loaders": ("videorft.engine",), "kernels": ("videorft.engine", "videorft.loaders")}


def _imports(path: Path) -> list[str]:
    """Every module an import statement of `path` names, function-level imports included."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("videorft."):
            names.append(node.value)                        # importlib-style string references
    return names


def test_no_lower_layer_imports_a_higher_one():
    offences = [f"{path.relative_to(ROOT)} imports {name}"
                for package, banned in FORBIDDEN.items() for path in sorted((ROOT / package).rglob("*.py"))
                for name in _imports(path) if name.startswith(banned)]
    assert not offences, "\n".join(offences)


def test_loaders_and_kernels_import_with_the_engine_unimportable():
    modules = [".".join(("videorft",) + p.relative_to(ROOT).with_suffix("").parts)
               for package in FORBIDDEN for p in sorted((ROOT / package).rglob("*.py"))
               if p.name != "__init__.py"]
    script = ("import sys, importlib\n"
              "class Block:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name == 'videorft.engine' or name.startswith('videorft.engine.'):\n"
              "            raise ImportError('engine blocked: ' + name)\n"
              "sys.meta_path.insert(0, Block())\n"
              f"for name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              "print(len([m for m in sys.modules if m.startswith('videorft.')]))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
