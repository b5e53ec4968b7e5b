"""The checkouts whose ``csms serve`` is measured: this one, and a baseline to compare with.

Why a checkout with its own venv: the baseline's server must run the baseline's code.
Its child runs the baseline's interpreter in the baseline's root with ``PYTHONPATH`` set
to it, and :func:`verify` asks a child started the same way where ``csms`` comes from
(a venv whose editable install points at another tree would import that tree's code).
The CLI ``csms serve --config`` is the one interface both sides must share.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.bench.procs import OUT, REPO, Proc

BASELINE_DIR = OUT / "baseline"  # under var/, which git ignores


@dataclass(frozen=True)
class Tree:
    """A checkout under test: ``label`` names it in the logs, the JSON and the tables."""

    label: str
    root: Path
    python: str
    commit: str

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.root)}

    def describe(self) -> str:
        return f"{self.label} {self.commit[:12]} ({self.root})"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def commit_of(root: Path) -> str:
    """HEAD of ``root``, marked when the working tree differs from it."""
    head = git(root, "rev-parse", "HEAD")
    dirty = git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{head}+changes" if dirty else head


def current_tree() -> Tree:
    return Tree("current", REPO, sys.executable, commit_of(REPO))


def base_python() -> str:
    """The interpreter this venv was made from: both sides run the same Python."""
    v = sys.version_info
    return str(Path(sys.base_prefix) / "bin" / f"python{v.major}.{v.minor}")


def ensure_venv(root: Path) -> str:
    """``root/.venv`` with ``root`` installed editable (again when its pyproject changed);
    returns its interpreter."""
    venv = root / ".venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"  creating {venv}", flush=True)
        subprocess.run([base_python(), "-m", "venv", str(venv)], check=True)
    stamp = venv / ".bench-installed"
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        print(f"  installing {root} into {venv}", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(root)], check=True)
        stamp.write_text(digest)
    return str(python)


def checkout(rev: str) -> Path:
    """:data:`BASELINE_DIR` as a detached git worktree at ``rev`` (created or moved)."""
    commit = git(REPO, "rev-parse", "--verify", f"{rev}^{{commit}}")
    if not (BASELINE_DIR / ".git").exists():
        BASELINE_DIR.parent.mkdir(parents=True, exist_ok=True)
        git(REPO, "worktree", "prune")
        print(f"  git worktree add --detach {BASELINE_DIR} {commit[:12]}", flush=True)
        git(REPO, "worktree", "add", "--detach", str(BASELINE_DIR), commit)
    elif git(BASELINE_DIR, "rev-parse", "HEAD") != commit:
        if git(BASELINE_DIR, "status", "--porcelain", "--untracked-files=no"):
            raise RuntimeError(f"{BASELINE_DIR} has local changes; remove it or commit them")
        print(f"  moving {BASELINE_DIR} to {commit[:12]}", flush=True)
        git(BASELINE_DIR, "checkout", "-q", "--detach", commit)
    return BASELINE_DIR


def baseline_tree(rev: str | None, path: str | None) -> Tree | None:
    """The baseline from a git revision (checked out under var/bench/) or from an existing
    checkout's path (``BENCH_BASELINE``); None when neither is given."""
    if rev:
        root = checkout(rev)
    elif path:
        root = Path(path).resolve()
    else:
        return None
    return Tree("baseline", root, ensure_venv(root), commit_of(root))


def verify(tree: Tree) -> str:
    """Where a child started like ``tree``'s server imports ``csms`` from; fails unless it
    is inside ``tree.root``."""
    probe = Proc(
        f"import-{tree.label}",
        ["-c", "import csms; print('csms from', csms.__file__)"],
        cwd=tree.root,
        env=tree.env(),
        python=tree.python,
    )
    where = probe.wait_for(r"csms from (\S+)").group(1)
    probe.stop()
    if not Path(where).resolve().is_relative_to(tree.root.resolve()):
        raise RuntimeError(f"{tree.label}: csms imported from {where}, not from {tree.root}")
    return where
