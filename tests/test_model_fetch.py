"""ppd-fetch. The hub download is replaced by a test double (no network here); it writes a file
of the requested name, as huggingface_hub.hf_hub_download(local_dir=...) does."""
import sys

import pytest

from ppd_ros.model import fetch as fetch_module
from ppd_ros.model.fetch import OFFICIAL_FILES, FetchError, RemoteFile, fetch


class FakeHub:
    """Test double for hf_hub_download: records calls and writes `size` bytes."""

    def __init__(self, size):
        self.size = size
        self.calls = []

    def __call__(self, repo_id, filename, local_dir):
        self.calls.append((repo_id, filename))
        path = f'{local_dir}/{filename}'
        with open(path, 'wb') as f:
            f.write(b'\0' * self.size)
        return path


SMALL_FILES = {
    'ppd': RemoteFile('gangweix/Pixel-Perfect-Depth', 'ppd.pth', 100, 200, 'dit'),
    'da2': RemoteFile('depth-anything/Depth-Anything-V2-Large', 'depth_anything_v2_vitl.pth',
                      100, 200, 'enc'),
}


def test_official_repositories_and_sizes():
    assert OFFICIAL_FILES['ppd'].repo_id == 'gangweix/Pixel-Perfect-Depth'
    assert OFFICIAL_FILES['ppd'].filename == 'ppd.pth'
    assert OFFICIAL_FILES['da2'].filename == 'depth_anything_v2_vitl.pth'
    assert OFFICIAL_FILES['ppd'].min_bytes == 2 * 499_842_112   # at least fp16 storage


def test_fetch_downloads_into_models_dir_and_skips_present_files(tmp_path):
    hub = FakeHub(150)
    logs = []
    models = tmp_path / 'models'
    paths = fetch(destination=models, download=hub, files=SMALL_FILES, log=logs.append)
    assert paths == [models / 'ppd.pth', models / 'depth_anything_v2_vitl.pth']
    assert hub.calls == [('gangweix/Pixel-Perfect-Depth', 'ppd.pth'),
                         ('depth-anything/Depth-Anything-V2-Large', 'depth_anything_v2_vitl.pth')]
    assert any(str(paths[0]) in line for line in logs)
    fetch(['ppd'], tmp_path / 'models', download=hub, files=SMALL_FILES, log=logs.append)
    assert len(hub.calls) == 2   # already there: no second download


def test_fetch_rejects_a_truncated_download(tmp_path):
    with pytest.raises(FetchError, match='50 bytes'):
        fetch(['ppd'], tmp_path, download=FakeHub(50), files=SMALL_FILES, log=lambda *_: None)


def test_missing_huggingface_hub_gives_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'huggingface_hub', None)   # import fails
    assert fetch_module.main(['ppd', '--models-dir', str(tmp_path)]) == 1
    assert 'pip install huggingface_hub' in capsys.readouterr().err
