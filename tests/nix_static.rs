//! Nix checks that need no nixpkgs: every `.nix` file parses (rung 0), has no dead bindings
//! (rung 1), and the VM test scripts are valid Python with no undefined names (rung 7).
//! See README.md "NixOS" for the whole ladder and what runs where.

#[path = "nix/common.rs"]
mod common;

use std::process::Command;

use common::{describe, nix_files, repo_root, run, tool};

#[test]
fn every_nix_file_parses() {
    let Some(nix) = tool(
        "nix-instantiate",
        "rung 0: nix-instantiate --parse on every .nix file",
    ) else {
        return;
    };
    let files = nix_files();
    assert!(
        files.iter().any(|f| f.ends_with("nix/module.nix"))
            && files.iter().any(|f| f.ends_with("flake.nix")),
        "nix files not found: {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let out = run(Command::new(&nix).arg("--parse").arg(file));
        if !out.status.success() {
            failures.push(format!("{}:\n{}", file.display(), describe(&out)));
        }
    }
    assert!(
        failures.is_empty(),
        "Nix syntax errors:\n{}",
        failures.join("\n")
    );
    eprintln!("rung 0: {} .nix files parse", files.len());
}

#[test]
fn no_dead_nix_bindings() {
    let Some(deadnix) = tool("deadnix", "rung 1: deadnix --fail on every .nix file") else {
        return;
    };
    let out = run(Command::new(deadnix).arg("--fail").args(nix_files()));
    assert!(
        out.status.success(),
        "deadnix found unused bindings (remove them, or prefix with _):\n{}",
        describe(&out)
    );
}

#[test]
fn vm_test_scripts_are_valid_python() {
    let what = "rung 7: VM test scripts evaluated with a stubbed flake and checked as Python";
    let (Some(nix), Some(python)) = (tool("nix-instantiate", what), tool("python3", what)) else {
        return;
    };
    let scripts = run(Command::new(nix).current_dir(repo_root()).args([
        "--eval",
        "--strict",
        "--json",
        "tests/nix/vm-scripts.nix",
    ]));
    assert!(
        scripts.status.success(),
        "evaluating the VM test specs failed:\n{}",
        describe(&scripts)
    );

    let mut child = Command::new(python)
        .arg(repo_root().join("tests/nix/check_vm_script.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&scripts.stdout)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "VM test scripts are broken:\n{}",
        describe(&out)
    );
    let checked = String::from_utf8_lossy(&out.stdout);
    for name in ["boot", "restart", "whatsapp"] {
        assert!(
            checked.contains(&format!("vm-tests/{name}.nix: testScript ok")),
            "VM test {name} was not checked:\n{checked}"
        );
    }
}
