//! `egressc diff --base-git`: the base read from a revision, and a hostile revision's attempts
//! to write outside the scratch folder (duplicate entries, links, submodules, huge blobs).

use crate::diff::has;
use crate::support::*;
use std::collections::BTreeSet;
use std::path::Path;

/// Run git in `dir` (no user or system configuration); it must succeed.
pub fn git(dir: &Path, args: &[&str]) {
    git_out(dir, args, b"");
}

/// Run git in `dir` with `input` on stdin; it must succeed: its output, trimmed.
fn git_out(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=egressc",
            "-c",
            "user.email=egressc@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether git can be run; says what is skipped when not.
fn have_git(test: &str) -> bool {
    let found = std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        skip("diff", test, "no git on PATH");
    }
    found
}

#[test]
fn base_git_reads_the_same_inputs_at_a_revision() {
    if !have_git("the --base-git test") {
        return;
    }
    let temporaries = || -> BTreeSet<String> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("egressc-diff-"))
            .collect()
    };
    let before = temporaries();
    let repo = std::env::temp_dir().join(format!("egressc-it-{}-git", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    let pair = root().join("fixtures/diff/wildcard-covers");
    let copy = |from: &str| {
        std::fs::create_dir_all(repo.join("deploy/egress")).unwrap();
        for f in ["mesh.yaml", "egress.yaml"] {
            let to = if f == "mesh.yaml" {
                "deploy"
            } else {
                "deploy/egress"
            };
            std::fs::copy(pair.join(from).join(f), repo.join(to).join(f)).unwrap();
        }
    };
    copy("base");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    copy("head");
    std::fs::write(repo.join("deploy/new.yaml"), "").unwrap();
    let run = egressc_in(
        &repo,
        &[
            "diff",
            "--base-git",
            "HEAD",
            "--head",
            "deploy/egress",
            "deploy/mesh.yaml",
            "./deploy/new.yaml",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    has(
        &run.stdout,
        "now covers https api.example.com:443, which was allowed before by Egress shop/example-api (HEAD:deploy/egress/egress.yaml:1)",
    );
    has(
        &run.stdout,
        "head: Egress shop/example (deploy/egress/egress.yaml:1)",
    );
    // A file that is new in the head has nothing in the base (said on stderr).
    has(&run.stderr, "`deploy/new.yaml` does not exist at HEAD");
    // In a subfolder the paths are relative to it; the temporary folder is gone afterwards.
    let sub = egressc_in(
        &repo.join("deploy"),
        &[
            "diff",
            "--base-git",
            "HEAD",
            "--head",
            "egress",
            "mesh.yaml",
            "--fail-on",
            "widen",
        ],
        None,
    );
    assert_eq!(sub.code, 6, "{}{}", sub.stdout, sub.stderr);
    has(&sub.stdout, "(HEAD:egress/egress.yaml:9)");
    // Errors at the revision name it; bad revisions and paths are usage errors.
    std::fs::write(
        repo.join("deploy/egress/egress.yaml"),
        "apiVersion: policy.flomesh.io/v1alpha1\nkind: [\n",
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "broken"]);
    copy("head");
    let broken = egressc_in(
        &repo,
        &["diff", "--base-git", "HEAD", "--head", "deploy"],
        None,
    );
    assert_eq!(broken.code, 1, "{}", broken.stderr);
    has(&broken.stderr, "HEAD:deploy/egress/egress.yaml");
    for args in [
        ["diff", "--base-git", "no-such-rev", "--head", "deploy"],
        ["diff", "--base-git", "HEAD", "--head", "../deploy"],
        ["diff", "--base-git", "HEAD", "--head", "-"],
    ] {
        let run = egressc_in(&repo, &args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    let left: Vec<String> = temporaries().difference(&before).cloned().collect();
    assert!(left.is_empty(), "temporary folders left behind: {left:?}");
    std::fs::remove_dir_all(&repo).ok();
}

#[test]
fn the_readme_example_is_real_output() {
    if !have_git("the README example") {
        return;
    }
    // The pull request of "Worked example", on a copy of example/ committed on `main`.
    let repo = std::env::temp_dir().join(format!("egressc-it-{}-readme", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    copy_tree(&root().join("example"), &repo.join("example"));
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    let edit = |file: &str, from: &str, to: &str| {
        let path = repo.join("example/mesh").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit("egress-http.yaml", "    - GET\n", "    - GET\n    - POST\n");
    edit(
        "egress-https.yaml",
        "  - httpbin.org\n",
        "  - httpbin.org\n  - \"*.httpbin.org\"\n",
    );
    edit("egress-tcp.yaml", "3.0.0.0/8", "3.0.0.0/16");
    let args = ["diff", "--base-git", "main", "--head", "example/mesh/"];
    let human = egressc_in(&repo, &args, None);
    let mut md_args = args.to_vec();
    md_args.extend(["--format", "markdown", "--fail-on", "widen"]);
    let markdown = egressc_in(&repo, &md_args, None);
    std::fs::remove_dir_all(&repo).ok();
    assert_eq!((human.code, markdown.code), (0, 6), "{}", human.stderr);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    has(
        &readme,
        &format!(
            "$ egressc diff --base-git main --head example/mesh/\n{}```",
            human.stdout
        ),
    );
    has(&readme, &format!("```markdown\n{}```", markdown.stdout));
    has(
        &readme,
        &format!("which GitHub shows as:\n\n{}\n", markdown.stdout),
    );
}

/// A commit whose tree is `deploy/` with the given entries `(MODE, TYPE, "NAME=CONTENT")` (a
/// blob of CONTENT, or for a `commit` entry the commit CONTENT names), made with plumbing:
/// Git's own checks of a checkout never see it, as with a fetched pull request.
fn hostile_commit(repo: &Path, deploy: &[(&str, &str, &str)]) -> String {
    let mut lines = String::new();
    for (mode, kind, what) in deploy {
        let (name, content) = what.split_once('=').unwrap();
        let oid = if *kind == "commit" {
            content.to_owned()
        } else {
            git_out(repo, &["hash-object", "-w", "--stdin"], content.as_bytes())
        };
        lines.push_str(&format!("{mode} {kind} {oid}\t{name}\n"));
    }
    let sub = git_out(repo, &["mktree"], lines.as_bytes());
    let top = git_out(
        repo,
        &["mktree"],
        format!("040000 tree {sub}\tdeploy\n").as_bytes(),
    );
    git_out(repo, &["commit-tree", "-m", "hostile", &top], b"")
}

fn scratch_repo(name: &str) -> std::path::PathBuf {
    let repo = std::env::temp_dir().join(format!("egressc-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(repo.join("deploy")).unwrap();
    std::fs::copy(
        root().join("fixtures/diff/wildcard-covers/base/mesh.yaml"),
        repo.join("deploy/mesh.yaml"),
    )
    .unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    repo
}

#[test]
fn a_hostile_revision_writes_nothing_outside_the_scratch_folder() {
    if !have_git("the hostile --base-git test") {
        return;
    }
    let repo = scratch_repo("hostile");
    let victim = repo.with_extension("victim");
    std::fs::write(&victim, "untouched\n").unwrap();
    let target = victim.to_string_lossy().into_owned();
    let link = format!("mesh.yaml={target}");
    let attacks = [
        // A link, then a blob of the same name: the blob was written through the link.
        (
            vec![
                ("120000", "blob", &link[..]),
                ("100644", "blob", "mesh.yaml=pwned\n"),
            ],
            "two entries named `deploy/mesh.yaml`",
        ),
        // A link out of the tree, alone.
        (vec![("120000", "blob", &link[..])], "absolute path"),
        (
            vec![("120000", "blob", "mesh.yaml=../../../../../../etc/passwd")],
            "leads outside the repository",
        ),
    ];
    for (entries, why) in attacks {
        let commit = hostile_commit(&repo, &entries);
        let run = egressc_in(
            &repo,
            &["diff", "--base-git", &commit, "--head", "deploy"],
            None,
        );
        assert_eq!(run.code, 2, "{entries:?}: {}{}", run.stdout, run.stderr);
        has(&run.stderr, why);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    }
    // A link that stays inside the inputs is followed (its file is read where it is).
    let inside = hostile_commit(
        &repo,
        &[
            ("100644", "blob", "real.yaml=# nothing\n"),
            ("120000", "blob", "again.yaml=real.yaml"),
        ],
    );
    let run = egressc_in(
        &repo,
        &["diff", "--base-git", &inside, "--head", "deploy"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::remove_dir_all(&repo).ok();
    std::fs::remove_file(&victim).ok();
}

#[test]
fn submodules_and_bad_revisions_are_named() {
    if !have_git("the --base-git submodule test") {
        return;
    }
    let repo = scratch_repo("submodule");
    let head = git_out(&repo, &["rev-parse", "HEAD"], b"");
    let sub = format!("vendor={head}");
    let commit = hostile_commit(&repo, &[("160000", "commit", &sub[..])]);
    for input in ["deploy", "deploy/vendor"] {
        let run = egressc_in(
            &repo,
            &["diff", "--base-git", &commit, "--head", input],
            None,
        );
        assert_eq!(run.code, 2, "{input}: {}", run.stderr);
        has(&run.stderr, "submodule");
    }
    let tree = egressc_in(
        &repo,
        &["diff", "--base-git", "HEAD^{tree}", "--head", "deploy"],
        None,
    );
    assert_eq!(tree.code, 2);
    has(&tree.stderr, "is a tree, not a commit");
    let nothing = egressc_in(
        &repo,
        &["diff", "--base-git", "nope", "--head", "deploy"],
        None,
    );
    has(
        &nothing.stderr,
        "`nope` is not a commit of the Git repository here",
    );
    let empty = repo.join("empty");
    std::fs::create_dir_all(empty.join("deploy")).unwrap();
    git(&empty, &["init", "-q"]);
    let run = egressc_in(
        &empty,
        &["diff", "--base-git", "HEAD", "--head", "deploy"],
        None,
    );
    assert_eq!(run.code, 2);
    has(&run.stderr, "has no commits yet");
    let outside = std::env::temp_dir().join(format!("egressc-it-{}-nogit", std::process::id()));
    std::fs::create_dir_all(outside.join("deploy")).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(["diff", "--base-git", "HEAD", "--head", "deploy"])
        .current_dir(&outside)
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    has(
        &String::from_utf8_lossy(&run.stderr),
        "not in a Git repository",
    );
    std::fs::remove_dir_all(&repo).ok();
    std::fs::remove_dir_all(&outside).ok();
}

#[test]
fn blobs_are_streamed_and_the_scratch_folder_is_private_and_removed_on_ctrl_c() {
    if !have_git("the --base-git streaming test") {
        return;
    }
    let repo = scratch_repo("stream");
    // A 96 MiB policy file at the revision, with a 1 MiB input limit: read in pieces.
    let big = vec![b'#'; 96 << 20];
    let commit = {
        let oid = git_out(&repo, &["hash-object", "-w", "--stdin"], &big);
        let sub = git_out(
            &repo,
            &["mktree"],
            format!("100644 blob {oid}\tbig.yaml\n").as_bytes(),
        );
        let top = git_out(
            &repo,
            &["mktree"],
            format!("040000 tree {sub}\tdeploy\n").as_bytes(),
        );
        git_out(&repo, &["commit-tree", "-m", "big", &top], b"")
    };
    drop(big);
    let stderr = repo.with_extension("stderr");
    let args = [
        "diff",
        "--base-git",
        &commit,
        "--head",
        "deploy",
        "--max-input-mib",
        "1",
    ];
    // The peak of egressc and its git alone: a child forked from this (large, busy) test
    // process would start with the parent's high-water mark, `time` starts small.
    let timed = Path::new("/usr/bin/time").exists();
    let mut cmd = if timed {
        let mut c = std::process::Command::new("/usr/bin/time");
        c.args(["-f", "peak-kib %M", env!("CARGO_BIN_EXE_egressc")]);
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_egressc"))
    };
    let status = cmd
        .args(args)
        .current_dir(&repo)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .status()
        .unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{said}");
    has(&said, "larger than the input limit of 1 MiB");
    match said.lines().find_map(|l| l.strip_prefix("peak-kib ")) {
        Some(kib) => {
            let kib: u64 = kib.trim().parse().unwrap();
            assert!(kib < 48 << 10, "diff peaked at {kib} KiB for a 96 MiB blob");
            eprintln!(
                "diff: a 96 MiB blob at the revision: peak RSS {} MiB",
                kib >> 10
            );
        }
        None => skip(
            "diff",
            "the peak memory of a 96 MiB blob",
            "no /usr/bin/time",
        ),
    }
    // Ctrl-C while the head waits on a pipe: the scratch folder (0700) is removed.
    let tmp = repo.with_extension("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let fifo = repo.join("wait.yaml");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args([
            "diff",
            "--base-git",
            "HEAD",
            "--head",
            "deploy",
            "wait.yaml",
        ])
        .current_dir(&repo)
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scratch = (0..200)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::fs::read_dir(&tmp).unwrap().flatten().next()
        })
        .expect("a scratch folder appears");
    std::thread::sleep(std::time::Duration::from_millis(200));
    use std::os::unix::fs::PermissionsExt;
    let mode = scratch.metadata().unwrap().permissions().mode() & 0o777;
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let code = child.wait().unwrap().code();
    assert_eq!(mode, 0o700, "the scratch folder is {mode:o}");
    assert_eq!(code, Some(130), "Ctrl-C ends diff with 130");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind after Ctrl-C: {left:?}");
    for p in [&tmp, &repo] {
        std::fs::remove_dir_all(p).ok();
    }
    std::fs::remove_file(&stderr).ok();
}
