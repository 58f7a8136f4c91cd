"""Checks NixOS test scripts: they parse as Python, and every name they read is defined by the
script, by Python, or by the NixOS test driver. Reads {"name": "script", ...} as JSON on stdin."""

import ast
import builtins
import json
import sys

# Globals the NixOS test driver (nixos/lib/test-driver) gives a test script; node names too.
DRIVER_GLOBALS = {
    "machine", "start_all", "subtest", "join_all", "retry", "log", "driver",
    "serial_stdout_on", "serial_stdout_off", "polling_condition", "create_machine",
    "Machine", "os", "re", "time", "t",
}


def undefined_names(tree: ast.AST) -> set[str]:
    defined, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                defined.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return used - defined - set(dir(builtins)) - DRIVER_GLOBALS


def main() -> int:
    scripts = json.load(sys.stdin)
    failed = False
    for name, source in sorted(scripts.items()):
        try:
            tree = ast.parse(source, filename=f"vm-tests/{name}.nix (testScript)")
        except SyntaxError as err:
            print(f"vm-tests/{name}.nix: testScript is not valid Python: {err}", file=sys.stderr)
            failed = True
            continue
        missing = undefined_names(tree)
        if missing:
            print(f"vm-tests/{name}.nix: testScript reads undefined names: {sorted(missing)}",
                  file=sys.stderr)
            failed = True
        else:
            print(f"vm-tests/{name}.nix: testScript ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
