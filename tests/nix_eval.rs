//! The NixOS module evaluated with nixpkgs' lib and stubbed NixOS options (tests/nix/): rung 2
//! (the rendered /etc/openclaw/openclaw.json, unit, CLI wrapper and check script equal the
//! committed golden files under tests/golden/nix/), rung 3 (bad values are refused at evaluation
//! time with a precise message) and rung 8 (the flake's outputs against a stubbed nixpkgs).
//!
//! Needs `NIXPKGS_LIB` (prints `SKIPPED:` without it). Regenerate the golden files after a module
//! change with `UPDATE_GOLDEN=1 NIXPKGS_LIB=... cargo test --test nix_eval`, then commit them.
//!
//! These are "module evaluated against nixpkgs.lib with stubbed NixOS options", not a NixOS
//! build: `nix flake check` on a NixOS host runs the real thing (README.md "NixOS").

#[path = "nix/common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{describe, golden_dir, nix_eval, nixpkgs_lib, pretty_json, tool};

const EVAL: &str = "tests/nix/eval.nix";

fn tools(what: &str) -> Option<(PathBuf, PathBuf)> {
    let nix = tool("nix-instantiate", what)?;
    let lib = nixpkgs_lib(what)?;
    Some((nix, lib))
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "module evaluation failed:\n{}",
        describe(out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Nix 2.8 has no abort-on-warn: a lib warning (e.g. a deprecated option type) only shows here.
    assert!(
        !stderr.contains("evaluation warning") && !stderr.contains("trace: warning"),
        "the module evaluation printed warnings:\n{stderr}"
    );
    serde_json::from_slice(&out.stdout).expect("evaluation output is JSON")
}

fn field<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {value}"))
}

/// Compares `actual` with the golden file `name`, or rewrites it when UPDATE_GOLDEN is set.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("updated {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "golden file {} is stale: the module now renders\n{actual}\n--- committed ---\n{expected}\n\
         Regenerate with UPDATE_GOLDEN=1 NIXPKGS_LIB=... cargo test --test nix_eval, review the \
         diff, and commit it.",
        path.display()
    );
}

fn eval(nix: &Path, lib: &Path, extra: Option<&str>) -> Output {
    nix_eval(nix, EVAL, lib, extra)
}

#[test]
fn rendered_outputs_match_golden_files() {
    let Some((nix, lib)) = tools("rung 2: module evaluation against nixpkgs.lib (golden files)")
    else {
        return;
    };
    let out = json(&eval(&nix, &lib, None));
    assert_eq!(
        out["warnings"],
        serde_json::json!([]),
        "the example config warns"
    );
    assert_eq!(out["etcMode"], "0644");
    assert_eq!(
        out["firewall"],
        serde_json::json!([]),
        "firewall opened by default"
    );

    let docs = out["optionDocs"].as_array().expect("optionDocs");
    let undocumented: Vec<_> = docs.iter().filter(|o| o["described"] != true).collect();
    assert!(
        undocumented.is_empty(),
        "options without a description: {undocumented:?}"
    );
    let names: Vec<&str> = docs.iter().filter_map(|o| o["name"].as_str()).collect();
    for typed in [
        "services.openclaw.settings.gateway.port",
        "services.openclaw.settings.gateway.bind",
        "services.openclaw.settings.channels.whatsapp.dmPolicy",
        "services.openclaw.settings.channels.whatsapp.allowFrom",
        "services.openclaw.checkConfig",
        "services.openclaw.tokenFile",
        "services.openclaw.hooksTokenFile",
    ] {
        assert!(
            names.contains(&typed),
            "option {typed} is not documented: {names:?}"
        );
    }

    check_golden("openclaw.json", &pretty_json(field(&out, "etcText")));
    check_golden("openclaw.service", field(&out, "unitText"));
    check_golden("openclaw-cli", field(&out, "cliWrapper"));
    check_golden("config-check.sh", field(&out, "checkScript"));

    // The unknown-WhatsApp-key config of vm-tests/bad-config.nix evaluates (the module cannot know
    // plugin keys); the real compiler must reject it (tests/nix_binary.rs).
    let bad = json(&eval(
        &nix,
        &lib,
        Some("import ./vm-tests/bad-whatsapp-key.nix"),
    ));
    check_golden(
        "bad-whatsapp-key.json",
        &pretty_json(field(&bad, "etcText")),
    );
}

/// Each case: an extra module, and a piece of the error message it must produce.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "port out of range",
        "{ services.openclaw.settings.gateway.port = 70000; }",
        "16 bit unsigned integer",
    ),
    (
        "bind not supported",
        r#"{ lib, ... }: { services.openclaw.settings.gateway.bind = lib.mkForce "0.0.0.0"; }"#,
        "gateway.bind = \"0.0.0.0\" is not supported by this",
    ),
    (
        "issue13 bind tailnet: upstream's, refused by the compiler, so not offered",
        r#"{ lib, ... }: { services.openclaw.settings.gateway.bind = lib.mkForce "tailnet"; }"#,
        "gateway (upstream OpenClaw's Tailscale bind); use one of",
    ),
    (
        "issue13 auth mode password: not offered",
        r#"{ lib, ... }: { services.openclaw.settings.gateway.auth.mode = lib.mkForce "password"; }"#,
        "gateway.auth.mode = \"password\" is not supported by",
    ),
    (
        "issue13 auth mode trusted-proxy: not offered",
        r#"{ lib, ... }: { services.openclaw.settings.gateway.auth.mode = lib.mkForce "trusted-proxy"; }"#,
        "gateway.auth.mode = \"trusted-proxy\" is not supported by",
    ),
    (
        "dmPolicy not in the enum",
        r#"{ services.openclaw.settings.channels.whatsapp.dmPolicy = "everyone"; }"#,
        "services.openclaw.settings.channels.whatsapp.dmPolicy",
    ),
    (
        "allowFrom not a list",
        r#"{ services.openclaw.settings.channels.whatsapp.allowFrom = "+15551234567"; }"#,
        "is not of type `null or (list of string)",
    ),
    (
        "a value JSON cannot hold",
        "{ services.openclaw.settings.hooks.transform = x: x; }",
        "JSON value",
    ),
    (
        "gateway token in settings",
        r#"{ services.openclaw.settings.gateway.auth.token = "hunter2hunter2"; }"#,
        "services.openclaw.settings contains secrets (gateway.auth.token)",
    ),
    (
        "hooks token in settings points to hooksTokenFile",
        r#"{ services.openclaw.settings.hooks.token = "hunter2hunter2"; }"#,
        "services.openclaw.hooksTokenFile",
    ),
    (
        "provider API key in settings",
        r#"{ services.openclaw.settings.models.providers.openai.apiKey = "sk-live-123"; }"#,
        "models.providers.openai.apiKey",
    ),
    (
        "token file in the Nix store",
        r#"{ lib, ... }: { services.openclaw.tokenFile = lib.mkForce "/nix/store/00000000000000000000000000000000-token"; }"#,
        "services.openclaw.tokenFile must be a string path outside the Nix store",
    ),
    (
        "token file as a Nix path literal",
        "{ lib, ... }: { services.openclaw.hooksTokenFile = lib.mkForce ./Cargo.toml; }",
        "services.openclaw.hooksTokenFile must be a string path outside the Nix store",
    ),
    (
        "state dir outside /var/lib",
        r#"{ services.openclaw.stateDir = "/srv/openclaw"; }"#,
        "stateDir must be a directory below /var/lib/",
    ),
    (
        "checkConfig neither bool nor syntax-only",
        r#"{ services.openclaw.checkConfig = "strict"; }"#,
        "services.openclaw.checkConfig",
    ),
];

#[test]
fn bad_values_are_refused_at_evaluation() {
    let Some((nix, lib)) = tools("rung 3: negative module evaluations") else {
        return;
    };
    let mut problems = Vec::new();
    for (case, module, expected) in REFUSED {
        let out = eval(&nix, &lib, Some(module));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            problems.push(format!(
                "{case}: evaluation succeeded, expected an error with {expected:?}"
            ));
        } else if !stderr.contains(expected) {
            problems.push(format!("{case}: error lacks {expected:?}:\n{stderr}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn secret_references_and_escape_hatches_evaluate() {
    let Some((nix, lib)) = tools("rung 3: accepted module variants") else {
        return;
    };
    // An environment reference names a secret without containing it.
    let out = json(&eval(
        &nix,
        &lib,
        Some(
            r#"{ services.openclaw.settings.models.providers.openai.apiKey = "\${OPENAI_API_KEY}"; }"#,
        ),
    ));
    assert!(field(&out, "etcText").contains("${OPENAI_API_KEY}"));

    let out = json(&eval(
        &nix,
        &lib,
        Some(r#"{ services.openclaw.checkConfig = "syntax-only"; }"#),
    ));
    assert!(field(&out, "checkScript").contains("syntax-only"), "{out}");

    let out = json(&eval(
        &nix,
        &lib,
        Some("{ services.openclaw.checkConfig = false; }"),
    ));
    assert!(
        out["checkScript"].is_null(),
        "checkConfig = false still checks: {out}"
    );

    let out = json(&eval(
        &nix,
        &lib,
        Some(
            r#"{ lib, ... }: { services.openclaw = { openFirewall = true; settings.gateway.bind = lib.mkForce "lan"; }; }"#,
        ),
    ));
    assert_eq!(out["firewall"], serde_json::json!([18789]));
    assert_eq!(out["warnings"], serde_json::json!([]));
}

#[test]
fn collisions_and_useless_options_warn() {
    let Some((nix, lib)) = tools("rung 3: module warnings") else {
        return;
    };
    let warnings = |module: &str| -> String {
        let out = eval(&nix, &lib, Some(module));
        assert!(out.status.success(), "{}", describe(&out));
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        value["warnings"].to_string()
    };
    let collision = warnings(r#"{ environment.etc."openclaw/openclaw.json".text = "{}"; }"#);
    assert!(
        collision.contains("Only one OpenClaw module can own that file"),
        "no collision warning: {collision}"
    );
    let firewall = warnings("{ services.openclaw.openFirewall = true; }");
    assert!(
        firewall.contains("binds loopback only"),
        "no openFirewall warning: {firewall}"
    );
}

#[test]
fn flake_outputs_have_the_expected_shape() {
    let Some((nix, lib)) = tools("rung 8: flake outputs evaluated against a stubbed nixpkgs")
    else {
        return;
    };
    let out = json(&nix_eval(&nix, "tests/nix/eval-flake.nix", &lib, None));
    for system in ["x86_64-linux", "aarch64-linux"] {
        assert_eq!(
            out["packages"][system],
            serde_json::json!(["default", "openclaw", "openclaw-wa-mock"]),
            "{out}"
        );
        assert_eq!(
            out["checks"][system],
            serde_json::json!([
                "bad-config",
                "module-eval",
                "package",
                "vm-boot",
                "vm-restart",
                "vm-whatsapp"
            ]),
            "{out}"
        );
    }
    assert_eq!(
        out["moduleIsFunction"], true,
        "Nix 2.8 needs nixosModules.default to be a function"
    );
    assert_eq!(out["package"]["pname"], "openclaw");
    assert_eq!(out["package"]["buildFeatures"], serde_json::json!([]));
    assert_eq!(out["package"]["defaultIsOpenclaw"], true);
    assert_eq!(
        out["waMock"]["buildFeatures"],
        serde_json::json!(["wa-mock"])
    );
    assert_eq!(out["devShells"], serde_json::json!(["default"]));
    assert_eq!(out["moduleEval"], "openclaw-module-eval");
    assert_eq!(out["badConfigCheck"], "openclaw-bad-config-rejected");
    for (name, test) in out["vmTests"].as_object().expect("vmTests") {
        let node = &test["nodes"]["machine"];
        assert_eq!(node["warnings"], serde_json::json!([]), "{name} node warns");
        let unit = node["openclawUnit"].as_str().unwrap_or_default();
        assert!(
            unit.contains("\nType=notify\n"),
            "{name}: no openclaw unit:\n{unit}"
        );
    }

    // The lock pins nixpkgs to an exact revision and hash.
    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("flake.lock")).unwrap(),
    )
    .unwrap();
    let locked = &lock["nodes"]["nixpkgs"]["locked"];
    assert_eq!(locked["rev"].as_str().map(str::len), Some(40), "{lock}");
    assert!(
        locked["narHash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256-")),
        "{lock}"
    );
}

/// Copies `files` (relative to `from`) into `to`, and commits them there as a fresh git repo:
/// flakes see only git-tracked files.
fn git_copy(git: &Path, from: &Path, files: &[String], to: &Path) {
    for file in files {
        let target = to.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(file), &target).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    for args in [
        vec!["init", "-q"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.email=nix-tests@localhost",
            "-c",
            "user.name=nix tests",
            "commit",
            "-qm",
            "snapshot",
        ],
    ] {
        let out = common::run(std::process::Command::new(git).current_dir(to).args(&args));
        assert!(
            out.status.success(),
            "git {args:?} in {}:\n{}",
            to.display(),
            describe(&out)
        );
    }
}

#[test]
fn nix_flake_check_passes_with_a_stubbed_nixpkgs() {
    let what = "rung 8: nix flake check --no-build (Nix 2.8) with nixpkgs overridden by a stub";
    let (Some(nix), Some(git), Some(lib)) =
        (tool("nix", what), tool("git", what), nixpkgs_lib(what))
    else {
        return;
    };
    let root = common::repo_root();
    let listed = common::run(std::process::Command::new(&git).current_dir(&root).args([
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
    ]));
    if !listed.status.success() {
        common::loud(&format!(
            "SKIPPED: {what} (the source tree is not a git checkout)"
        ));
        return;
    }
    let files: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|f| root.join(f).is_file())
        .map(String::from)
        .collect();

    let tmp = tempfile::tempdir().unwrap();
    let (repo, stub) = (tmp.path().join("repo"), tmp.path().join("stub"));
    git_copy(&git, &root, &files, &repo);

    let stub_files: Vec<String> = ["stub-nixpkgs.nix", "stub-pkgs.nix", "nixos-stubs.nix"]
        .iter()
        .map(|f| f.to_string())
        .collect();
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(
        stub.join("flake.nix"),
        format!(
            "{{\n  inputs.nixpkgs-lib.url = \"path:{}\";\n  outputs = {{ nixpkgs-lib, ... }}:\n    \
             import ./stub-nixpkgs.nix {{ libPath = \"${{nixpkgs-lib}}/lib\"; }};\n}}\n",
            lib.parent().unwrap().display()
        ),
    )
    .unwrap();
    git_copy(&git, &root.join("tests/nix"), &stub_files, &stub);

    let out = common::run(
        std::process::Command::new(nix)
            .args(["--extra-experimental-features", "nix-command flakes"])
            .args([
                "flake",
                "check",
                "--no-build",
                "--offline",
                "--no-write-lock-file",
            ])
            .arg("--override-input")
            .arg("nixpkgs")
            .arg(format!("git+file://{}", stub.display()))
            .arg(format!("git+file://{}", repo.display())),
    );
    assert!(
        out.status.success(),
        "nix flake check rejects the flake:\n{}",
        describe(&out)
    );
}
