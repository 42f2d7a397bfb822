"""What makes a kept platform fit a quick run's next request (ailab.local.pool.platform_key), without a server."""

from __future__ import annotations

from pathlib import Path

from ailab.local.pool import Key, platform_key


def _repo(root: Path, models: dict[str, str]) -> Path:
    for name, text in models.items():
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(f'name: "{name}"\n{text}\n')
        (root / name / "1" / "model.py").write_text("# model\n")
    return root


def _key(repo: Path, **options: object) -> Key:
    return platform_key(["triton"], {"triton.model_repository": repo, **options}, supervise=False)


def test_a_repository_with_every_requested_model_byte_for_byte_serves_it(tmp_path: Path) -> None:
    both = _key(_repo(tmp_path / "a", {"mlp": "max_batch_size: 8", "topk": "max_batch_size: 8"}))
    same = _key(_repo(tmp_path / "b", {"mlp": "max_batch_size: 8", "topk": "max_batch_size: 8"}))
    one = _key(_repo(tmp_path / "c", {"mlp": "max_batch_size: 8"}))
    changed = _key(_repo(tmp_path / "d", {"mlp": "max_batch_size: 4"}))
    assert both.serves(same) and same.serves(both)  # the path is not part of the key, the bytes are
    assert both.serves(one) and not one.serves(both)  # a superset serves a subset, not the other way round
    assert not both.serves(changed)


def test_options_and_supervision_must_match_exactly(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r", {"mlp": ""})
    plain = _key(repo, **{"triton.args": []})
    assert not plain.serves(_key(repo, **{"triton.args": ["--rate-limit=execution_count"]}))
    assert not plain.serves(_key(repo, **{"triton.args": [], "triton.model_control_mode": "explicit"}))
    supervised = platform_key(["triton"], {"triton.model_repository": repo, "triton.args": []}, supervise=True)
    assert not plain.serves(supervised)


def test_bytecode_written_beside_a_model_does_not_change_the_key(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r", {"mlp": ""})
    before = _key(repo)
    (repo / "mlp" / "1" / "__pycache__").mkdir()
    (repo / "mlp" / "1" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0\1")
    assert _key(repo) == before
    (repo / "mlp" / "1" / "model.py").write_text("# another model\n")
    assert not before.serves(_key(repo))
