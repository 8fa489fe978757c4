"""ppd-fetch: downloads over HTTP from a local server standing in for the hub (no network
here), size checks, nothing left behind on failure."""
import functools
import http.server
import os
import threading

import pytest

from ppd_ros.model.fetch import (WEIGHT_FILES, FetchError, ManualFileError, RemoteFile, fetch,
                                 url_download)

SMALL_FILES = {
    'ppd': RemoteFile('ppd.pth', 'gangweix/Pixel-Perfect-Depth', 'dit', 'Apache-2.0',
                      'dit_checkpoint', 100, 200),
    'da2': RemoteFile('depth_anything_v2_vitl.pth', 'depth-anything/Depth-Anything-V2-Large',
                      'enc', 'CC-BY-NC-4.0', 'encoder_checkpoint', 100, 200),
}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A local HTTP server laid out like the hub (<repo>/resolve/main/<file>), 150-byte files;
    HF_ENDPOINT points at it. Yields the list of requested paths."""
    root = tmp_path / 'hub'
    for spec in SMALL_FILES.values():
        path = root / spec.repo_id / 'resolve' / 'main' / spec.filename
        path.parent.mkdir(parents=True)
        path.write_bytes(b'\0' * 150)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv('HF_ENDPOINT', f'http://127.0.0.1:{server.server_port}')
    yield requests
    server.shutdown()
    server.server_close()


def test_official_files_sources_licences_and_sizes():
    assert WEIGHT_FILES['ppd'].url('https://huggingface.co') == \
        'https://huggingface.co/gangweix/Pixel-Perfect-Depth/resolve/main/ppd.pth'
    assert WEIGHT_FILES['da2'].filename == 'depth_anything_v2_vitl.pth'
    assert WEIGHT_FILES['ppd'].min_bytes == 2 * 499_842_112   # at least fp16 storage
    assert WEIGHT_FILES['ppd'].licence == 'Apache-2.0'
    assert WEIGHT_FILES['da2'].licence.startswith('CC-BY-NC-4.0')
    assert {spec.setting for spec in WEIGHT_FILES.values()} >= {'dit_checkpoint',
                                                                'encoder_checkpoint'}
    # MoGe-2's file is model.pt in its repository, kept under the repository's name here;
    # the official copy has 1,323,815,904 bytes (fp32)
    moge = WEIGHT_FILES['moge2']
    assert moge.url('https://huggingface.co') == \
        'https://huggingface.co/Ruicheng/moge-2-vitl-normal/resolve/main/model.pt'
    assert moge.filename == 'moge-2-vitl-normal.pt' and moge.licence == 'MIT'
    assert moge.min_bytes <= 1_323_815_904 <= moge.max_bytes


def test_a_file_outside_the_hub_downloads_from_its_own_address(tmp_path, hub):
    hub_url = os.environ['HF_ENDPOINT']
    elsewhere = {'x': RemoteFile('x.pth', '', 'x', 'MIT', 'x_checkpoint', 100, 200,
                                 f'{hub_url}/gangweix/Pixel-Perfect-Depth/resolve/main/ppd.pth')}
    paths = fetch(['x'], tmp_path / 'm', files=elsewhere, log=lambda *_: None,
                  download=functools.partial(url_download, progress=False))
    assert paths == [tmp_path / 'm' / 'x.pth'] and paths[0].stat().st_size == 150


def test_fetch_downloads_into_models_dir_and_skips_present_files(tmp_path, hub):
    logs = []
    models = tmp_path / 'models'
    paths = fetch(destination=models, files=SMALL_FILES, log=logs.append,
                  download=functools.partial(url_download, progress=False))
    assert paths == [models / 'ppd.pth', models / 'depth_anything_v2_vitl.pth']
    assert all(p.stat().st_size == 150 for p in paths)
    assert sorted(p.name for p in models.iterdir()) == sorted(p.name for p in paths)
    assert hub == ['/gangweix/Pixel-Perfect-Depth/resolve/main/ppd.pth',
                   '/depth-anything/Depth-Anything-V2-Large/resolve/main/'
                   'depth_anything_v2_vitl.pth']
    assert any(str(paths[0]) in line and 'Apache-2.0' in line for line in logs)
    fetch(['ppd'], models, files=SMALL_FILES, log=logs.append)
    assert len(hub) == 2   # already there: no second download


def test_a_truncated_download_leaves_nothing_behind(tmp_path, hub):
    short = {'ppd': RemoteFile('ppd.pth', 'gangweix/Pixel-Perfect-Depth', 'dit', 'x', 's',
                               500, 600)}
    models = tmp_path / 'models'
    with pytest.raises(FetchError, match='150 bytes'):
        fetch(['ppd'], models, files=short, log=lambda *_: None,
              download=functools.partial(url_download, progress=False))
    assert not models.exists()   # created by this call, removed again


def test_an_http_error_names_the_url(tmp_path, hub):
    missing = {'x': RemoteFile('nope.pth', 'no/such', 'x', 'x', 's', 1, 2)}
    models = tmp_path / 'models'
    models.mkdir()
    with pytest.raises(FetchError, match='nope.pth answered HTTP 404'):
        fetch(['x'], models, files=missing, log=lambda *_: None,
              download=functools.partial(url_download, progress=False))
    assert list(models.iterdir()) == []   # no partial file; the folder was there before


def test_moge_files_sources_licences_and_hub_name():
    moge = WEIGHT_FILES['moge2']
    assert moge.url('https://huggingface.co') == \
        'https://huggingface.co/Ruicheng/moge-2-vitl-normal/resolve/main/model.pt'
    assert moge.filename == 'moge-2-vitl-normal.pt' and moge.licence == 'MIT'
    assert moge.min_bytes == 2 * 330_901_550
    dit = WEIGHT_FILES['ppd_moge']
    assert dit.repo_id == '' and 'gangweix/pixel-perfect-depth' in dit.manual_source
    assert (dit.min_bytes, dit.max_bytes) == (WEIGHT_FILES['ppd'].min_bytes,
                                              WEIGHT_FILES['ppd'].max_bytes)


def test_a_file_off_the_hub_is_checked_when_placed_and_explained_when_missing(tmp_path):
    files = {'ppd_moge': RemoteFile('ppd_moge.pth', '', 'dit', '?', 'dit_checkpoint', 100, 200,
                                    manual_source='a file-sharing link')}
    models = tmp_path / 'models'

    def no_download(url, target):
        raise AssertionError('a file off the hub is never downloaded')

    with pytest.raises(ManualFileError, match='only on a file-sharing link.*'
                       'ppd_moge.pth, or give its path with dit_checkpoint'):
        fetch(['ppd_moge'], models, files=files, download=no_download, log=lambda *_: None)
    assert not models.exists()
    models.mkdir()
    (models / 'ppd_moge.pth').write_bytes(b'\0' * 150)   # placed by hand
    assert fetch(['ppd_moge'], models, files=files, download=no_download,
                 log=lambda *_: None) == [models / 'ppd_moge.pth']
    (models / 'ppd_moge.pth').write_bytes(b'\0' * 50)
    with pytest.raises(FetchError, match='50 bytes'):
        fetch(['ppd_moge'], models, files=files, download=no_download, log=lambda *_: None)


def test_ppd_fetch_says_where_a_missing_manual_file_comes_from_in_one_line(tmp_path, capsys):
    from ppd_ros.model.fetch import main
    assert main(['ppd_moge', '--models-dir', str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'Google Drive link' in err[0] and 'dit_checkpoint' in err[0]
    assert str(tmp_path / 'ppd_moge.pth') in err[0]
