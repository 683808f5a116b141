//! The composite GitHub Action (`action.yml`), its steps run with GitHub's environment.

use super::*;

/// One run of action.yml's steps, as the runner would: each `run` in bash, with the step's
/// `env` (expressions substituted) over the job's environment, stopping at the first failure.
struct ActionRun {
    /// Each step run: its name, exit status, stdout and outputs.
    steps: Vec<(String, i32, String, BTreeMap<String, String>)>,
    /// The action's outputs.
    outputs: BTreeMap<String, String>,
    /// What the fake `cargo` and `gh` were asked.
    calls: Vec<String>,
    summary: String,
    /// RUNNER_TEMP and the rest, kept while the run is looked at.
    _dir: tempfile::TempDir,
}

impl ActionRun {
    fn step(&self, name: &str) -> &(String, i32, String, BTreeMap<String, String>) {
        self.steps
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("step `{name}` did not run: {:?}", self.names()))
    }

    fn names(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.0.as_str()).collect()
    }

    /// The step that failed (the last one run), if any.
    fn failed(&self) -> Option<&str> {
        self.steps.last().filter(|s| s.1 != 0).map(|s| s.0.as_str())
    }
}

/// `${{ … }}` expressions replaced by `value`.
fn substitute(text: &str, value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("an unclosed expression") + i;
        out.push_str(&value(rest[i + 3..end].trim()));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

const FAKE_CARGO: &str = "#!/bin/sh\necho \"cargo $*\" >> \"$FAKE_LOG\"\n";
/// `gh`: logs its call; `--edit-last` fails (no earlier comment) when FAKE_GH_FIRST is set.
const FAKE_GH: &str = "#!/bin/sh\necho \"gh $* token=$GH_TOKEN repo=$GH_REPO\" >> \"$FAKE_LOG\"\nfor a in \"$@\"; do\n  if [ \"$a\" = --edit-last ] && [ -n \"${FAKE_GH_FIRST:-}\" ]; then exit 1; fi\ndone\n";

/// Run action.yml in `workspace` with these inputs and job env.
fn run_action(workspace: &Path, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> ActionRun {
    run_steps(workspace, inputs, env, &[], usize::MAX)
}

/// Run the first `count` steps of action.yml in `workspace` with these inputs and job env,
/// and these fake tools (name, script) besides `cargo` and `gh`.
fn run_steps(
    workspace: &Path,
    inputs: &[(&str, &str)],
    env: &[(&str, &str)],
    fakes: &[(&str, &str)],
    count: usize,
) -> ActionRun {
    let action = yaml_file("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    let dir = scratch();
    let (fake, temp) = (dir.path().join("bin"), dir.path().join("runner-temp"));
    std::fs::create_dir_all(&temp).unwrap();
    script(&fake.join("cargo"), FAKE_CARGO);
    script(&fake.join("gh"), FAKE_GH);
    for (name, body) in fakes {
        script(&fake.join(name), body);
    }
    let (log, summary, event) = (
        dir.path().join("calls"),
        dir.path().join("summary.md"),
        dir.path().join("event.json"),
    );
    write(&log, "");
    write(&summary, "");
    write(
        &event,
        "{\"action\": \"opened\", \"number\": 7, \"pull_request\": {\"number\": 7, \"base\": {\"ref\": \"main\"}}}",
    );
    let mut job: BTreeMap<String, String> = [
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_BASE_REF", "main"),
        ("GITHUB_REF", "refs/pull/7/merge"),
        ("GITHUB_ACTION_REPOSITORY", "your-org/egressc"),
        ("GITHUB_SERVER_URL", "https://github.com"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in [
        ("GITHUB_EVENT_PATH", &event),
        ("RUNNER_TEMP", &temp),
        ("GITHUB_WORKSPACE", &workspace.to_path_buf()),
        ("FAKE_LOG", &log),
        ("HOME", &dir.path().to_path_buf()),
    ] {
        job.insert(k.into(), v.to_string_lossy().into_owned());
    }
    job.insert(
        "PATH".into(),
        search_path(&[&fake, &bin_dir()])
            .to_string_lossy()
            .into_owned(),
    );
    for (k, v) in env {
        job.insert(k.to_string(), v.to_string());
    }
    let mut run = ActionRun {
        steps: Vec::new(),
        outputs: BTreeMap::new(),
        calls: Vec::new(),
        summary: String::new(),
        _dir: dir,
    };
    let mut by_id: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (n, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .take(count)
        .enumerate()
    {
        let name = step["name"].as_str().unwrap().to_owned();
        assert!(
            step["if"].is_null(),
            "{name}: conditions belong in the script"
        );
        assert_eq!(step["shell"], "bash", "{name}");
        let body = step["run"].as_str().unwrap();
        assert!(
            !body.contains("${{"),
            "{name}: a script reads only its environment"
        );
        let value = |expr: &str| expression(expr, &action, inputs, &job, &by_id);
        let file = temp.join(format!("step-{n}.sh"));
        write(&file, body);
        let output = temp.join(format!("output-{n}"));
        write(&output, "");
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&file)
            .current_dir(workspace)
            .env_clear()
            .envs(&job)
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .stdin(Stdio::null());
        if let Some(vars) = step["env"].as_object() {
            for (k, v) in vars {
                cmd.env(k, substitute(v.as_str().unwrap(), &value));
            }
        }
        let out = cmd.output().expect("bash runs");
        let outputs: BTreeMap<String, String> = std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .map(|l| {
                assert!(
                    !l.contains("<<"),
                    "multi-line outputs are not read here: {l}"
                );
                let (k, v) = l.split_once('=').expect("key=value");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        if let Some(id) = step["id"].as_str() {
            by_id.insert(id.to_owned(), outputs.clone());
        }
        let code = out.status.code().unwrap_or(-1);
        let stdout = text(&out.stdout) + &text(&out.stderr);
        run.steps.push((name, code, stdout, outputs));
        if code != 0 {
            break;
        }
    }
    for (k, v) in action["outputs"].as_object().unwrap() {
        let value = |expr: &str| expression(expr, &action, inputs, &job, &by_id);
        run.outputs
            .insert(k.clone(), substitute(v["value"].as_str().unwrap(), &value));
    }
    run.calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    run.summary = std::fs::read_to_string(&summary).unwrap();
    run
}

/// The value of one of the expressions action.yml uses.
fn expression(
    expr: &str,
    action: &Value,
    inputs: &[(&str, &str)],
    job: &BTreeMap<String, String>,
    steps: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    if let Some(name) = expr.strip_prefix("inputs.") {
        let declared = &action["inputs"][name];
        assert!(declared.is_object(), "input `{name}` is not declared");
        return inputs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| declared["default"].as_str().unwrap_or("").to_owned());
    }
    if let Some(path) = expr.strip_prefix("steps.") {
        let (id, output) = path.split_once(".outputs.").expect("steps.ID.outputs.NAME");
        return steps
            .get(id)
            .and_then(|o| o.get(output))
            .cloned()
            .unwrap_or_default();
    }
    match expr {
        "github.token" => "dummy-token".into(),
        "github.repository" => "your-org/app".into(),
        "github.action_repository" => job["GITHUB_ACTION_REPOSITORY"].clone(),
        _ => panic!("an expression this test does not know: {expr}"),
    }
}

/// Whether bash runs; says what is skipped when not.
fn bash(what: &str) -> bool {
    tool("bash", &["--version"], what)
}

#[test]
fn action_installs_egressc_with_cargo_from_its_repository() {
    if !bash("the action's install step") {
        return;
    }
    let ws = scratch();
    let run = run_steps(ws.path(), &[], &[], &[], 1);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(
        run.calls,
        ["cargo install --locked --git https://github.com/your-org/egressc --branch main egressc"]
    );
    let tagged = [
        ("version", "v0.2.0"),
        ("repository", "https://git.example.com/egressc.git"),
    ];
    let run = run_steps(ws.path(), &tagged, &[], &[], 1);
    assert_eq!(
        run.calls,
        ["cargo install --locked --git https://git.example.com/egressc.git --tag v0.2.0 egressc"]
    );
    // Skipped on request; an error when there is no repository to install from.
    let run = run_steps(ws.path(), &[], &[("EGRESSC_SKIP_INSTALL", "true")], &[], 1);
    assert_eq!(run.failed(), None);
    assert!(run.calls.is_empty(), "{:?}", run.calls);
    let run = run_steps(ws.path(), &[], &[("GITHUB_ACTION_REPOSITORY", "")], &[], 1);
    assert_eq!(run.failed(), Some("Install egressc"));
    has(
        &run.steps[0].2,
        "::error title=egressc::cannot tell which repository",
    );
    assert!(run.calls.is_empty());
}

/// A git repository with the example mesh committed on `main` (and `origin/main`), then on
/// branch `change` the example with `edit` applied (not committed).
fn mesh_repo(edit: &dyn Fn(&Path)) -> tempfile::TempDir {
    let ws = scratch();
    copy_tree(&root().join("example/mesh"), &ws.path().join("mesh"));
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-q", "-m", "base"]);
    git(
        ws.path(),
        &["update-ref", "refs/remotes/origin/main", "main"],
    );
    git(ws.path(), &["checkout", "-q", "-b", "change"]);
    edit(&ws.path().join("mesh"));
    ws
}

fn add_host(mesh: &Path) {
    let f = mesh.join("egress-https.yaml");
    let yaml = std::fs::read_to_string(&f).unwrap();
    let widened = yaml.replace(
        "  - httpbin.org\n",
        "  - httpbin.org\n  - api.example.com\n",
    );
    assert_ne!(widened, yaml);
    std::fs::write(f, widened).unwrap();
}

#[test]
fn action_diff_comments_and_fails_when_access_is_gained() {
    if !bash("the action's diff") || !tool("git", &["--version"], "the action's diff") {
        return;
    }
    let ws = mesh_repo(&add_host);
    let inputs = [("command", "diff"), ("paths", "mesh"), ("base-ref", "main")];
    // No comment of ours yet: `--edit-last` fails and a new comment is posted.
    let run = run_action(ws.path(), &inputs, &[("FAKE_GH_FIRST", "1")]);
    assert_eq!(run.failed(), Some("Verdict"), "{:?}", run.steps);
    let outputs = &run.step("Run egressc").3;
    assert_eq!(outputs["code"], "6");
    assert_eq!(run.outputs["exit-code"], "6");
    let report = &outputs["report"];
    assert!(report.ends_with("/egress-diff.md"), "{report}");
    let markdown = std::fs::read_to_string(report).unwrap();
    has(
        &markdown,
        "**egressc diff**: 1 identity gains access to 1 destination",
    );
    has(&markdown, "`api.example.com:443`");
    assert_eq!(run.summary, markdown);
    let comment = format!(
        "gh pr comment 7 --edit-last --body-file {report} token=dummy-token repo=your-org/app"
    );
    let fallback =
        format!("gh pr comment 7 --body-file {report} token=dummy-token repo=your-org/app");
    assert_eq!(&run.calls[1..], [comment, fallback]);
    has(
        &run.step("Verdict").2,
        "::error title=egressc diff::this change widens egress",
    );
    // With a comment to edit: edited only. `fail-on: never`: reported, not failed.
    let never = [
        ("command", "diff"),
        ("paths", "mesh"),
        ("base-ref", "main"),
        ("fail-on", "never"),
    ];
    let run = run_action(ws.path(), &never, &[]);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "0");
    assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
    has(&run.calls[1], "gh pr comment 7 --edit-last --body-file ");
    // `fail-on: any` says so in its own words.
    let any = [
        ("command", "diff"),
        ("paths", "mesh"),
        ("base-ref", "main"),
        ("fail-on", "any"),
    ];
    let run = run_action(ws.path(), &any, &[]);
    has(&run.step("Verdict").2, "this change alters egress access");
}

#[test]
fn action_diff_passes_when_access_is_only_lost() {
    if !bash("the action's diff") || !tool("git", &["--version"], "the action's diff") {
        return;
    }
    let ws = mesh_repo(&|mesh: &Path| std::fs::remove_file(mesh.join("egress-tcp.yaml")).unwrap());
    // base-ref empty: `origin/` and the pull request's base branch. A jq that fails: the pull
    // request's number comes from GITHUB_REF.
    let inputs = [("command", "diff"), ("paths", "mesh")];
    let no_jq = [("jq", "#!/bin/sh\nexit 127\n")];
    let run = run_steps(ws.path(), &inputs, &[], &no_jq, usize::MAX);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "0");
    let report = &run.step("Run egressc").3["report"];
    let markdown = std::fs::read_to_string(report).unwrap();
    has(&markdown, "loses access");
    assert_eq!(run.summary, markdown);
    assert_eq!(run.calls.len(), 2, "{:?}", run.calls);
    has(&run.calls[1], "gh pr comment 7 --edit-last --body-file ");
}

#[test]
fn action_check_annotates_errors_for_github() {
    if !bash("the action's check") {
        return;
    }
    let ws = scratch();
    copy_tree(
        &root().join("fixtures/bad-e0304-host"),
        &ws.path().join("mesh"),
    );
    let run = run_action(ws.path(), &[("command", "check"), ("paths", "mesh")], &[]);
    assert_eq!(run.failed(), Some("Verdict"), "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "1");
    let (_, _, stdout, _) = run.step("Run egressc");
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 6, "{stdout}");
    for e in &errors {
        assert!(e.starts_with("::error file=mesh/egress.yaml,line="), "{e}");
        has(e, "title=E0304::");
    }
    assert!(
        errors[0].starts_with("::error file=mesh/egress.yaml,line=14,col=5,"),
        "{}",
        errors[0]
    );
    has(&run.step("Verdict").2, "::error title=egressc check::");
    // No comment outside diff.
    assert_eq!(run.calls.len(), 1, "{:?}", run.calls);
    // A clean mesh passes.
    copy_tree(&root().join("example/mesh"), &ws.path().join("clean"));
    let run = run_action(ws.path(), &[("command", "check"), ("paths", "clean")], &[]);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert!(!run.step("Run egressc").2.contains("::error"));
}

#[test]
fn action_test_runs_the_cases_and_fails_on_a_wrong_verdict() {
    if !bash("the action's test") {
        return;
    }
    let ws = scratch();
    copy_tree(&root().join("example"), ws.path());
    let inputs = [("command", "test"), ("paths", "cases.yaml mesh")];
    let run = run_action(ws.path(), &inputs, &[]);
    assert_eq!(run.failed(), None, "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "0");
    has(&run.step("Run egressc").2, "13 cases passed, 0 failed");
    write(
        &ws.path().join("wrong.yaml"),
        "cases:\n- name: curl may reach example.com\n  from: curl/curl\n  to: example.com:443\n  expect: allowed\n",
    );
    let run = run_action(
        ws.path(),
        &[("command", "test"), ("paths", "wrong.yaml mesh")],
        &[],
    );
    assert_eq!(run.failed(), Some("Verdict"), "{:?}", run.steps);
    assert_eq!(run.outputs["exit-code"], "5");
    has(&run.step("Verdict").2, "::error title=egressc test::");
    // An unknown command fails where it is read.
    let run = run_action(ws.path(), &[("command", "lint")], &[]);
    assert_eq!(run.failed(), Some("Run egressc"));
    has(&run.step("Run egressc").2, "command is `lint`");
}
