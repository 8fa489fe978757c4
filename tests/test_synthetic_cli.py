"""ppd-synth command line: bag and PNG previews."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from ppd_ros.bag import BagReader
from ppd_ros.synthetic import generate_sequence
from ppd_ros.synthetic.cli import main
from ppd_ros.synthetic.preview import colorize_depth


def test_bag_and_previews(tmp_path, capsys):
    bag, previews = tmp_path / 'bag', tmp_path / 'png'
    rc = main([str(bag), '--frames', '3', '--width', '40', '--height', '30', '--seed', '2',
               '--storage', 'mcap', '--rate', '15', '--compressed', '--compressed-format', 'png',
               '--preview-dir', str(previews)])
    assert rc == 0
    out = capsys.readouterr().out
    assert str(bag.resolve()) in out and str(previews.resolve()) in out
    with BagReader(bag) as reader:
        assert reader.message_count('/camera/image_raw/compressed') == 3
        stamps = [m.stamp_ns for m in reader.messages(['/camera/depth/image_raw'])]
    # 15 Hz without drift: each stamp rounds i / 15 s from the first
    assert [s - stamps[0] for s in stamps] == [0, 66_666_667, 133_333_333]
    pngs = sorted(previews.glob('*.png'))
    assert [p.name for p in pngs] == ['frame_000000.png', 'frame_000001.png', 'frame_000002.png']
    refs = list(generate_sequence(2, 3, 40, 30))
    first_depths = refs[0].depth[refs[0].valid]
    fixed = {'vmin': float(first_depths.min()), 'vmax': float(first_depths.max())}
    for png, ref in zip(pngs, refs):
        image = cv2.imread(str(png))[:, :, ::-1]
        assert image.shape == (30, 80, 3)
        np.testing.assert_array_equal(image[:, :40], ref.rgb)
        # one depth colour scale for the whole sequence: the first frame's range
        np.testing.assert_array_equal(image[:, 40:], colorize_depth(ref.depth, **fixed))


def test_argument_errors(tmp_path, capsys):
    assert main([]) == 2
    assert main([str(tmp_path / 'b'), '--frames', '0']) == 2
    (tmp_path / 'exists').mkdir()
    (tmp_path / 'exists' / 'keep.txt').write_text('x')
    assert main([str(tmp_path / 'exists'), '--frames', '1', '--width', '8', '--height', '6']) == 2
    assert '--overwrite' in capsys.readouterr().err
    assert main([str(tmp_path / 'exists'), '--frames', '1', '--width', '8', '--height', '6',
                 '--overwrite']) == 2
    assert 'not a rosbag2 bag' in capsys.readouterr().err
    assert (tmp_path / 'exists' / 'keep.txt').exists()


def test_a_storage_file_name_gives_that_one_file_and_overwrite_replaces_it(tmp_path, capsys):
    bag = tmp_path / 'out' / 'scenes.mcap'
    args = [str(bag), '--frames', '2', '--width', '16', '--height', '12', '--no-progress']
    assert main(args) == 0
    assert bag.is_file() and sorted(p.name for p in bag.parent.iterdir()) == ['scenes.mcap']
    with BagReader(bag) as reader:
        assert reader.message_count('/camera/image_raw') == 2
    assert 'ppd-synth' not in capsys.readouterr().err   # --no-progress: no bar
    assert main(args + ['--frames', '3']) == 2          # exists: refused before any frame
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--overwrite' in err and '%' not in err
    assert main(args + ['--frames', '3', '--overwrite']) == 0
    with BagReader(bag) as reader:
        assert reader.message_count('/camera/image_raw') == 3
    assert main([str(tmp_path / 'x.db3'), '--storage', 'mcap']) == 2
    assert 'drop --storage' in capsys.readouterr().err


def test_colorize_depth_marks_invalid_black_and_orders_near_far():
    depth = np.array([[1.0, 2.0, np.nan]], dtype=np.float32)
    rgb = colorize_depth(depth)
    np.testing.assert_array_equal(rgb[0, 2], [0, 0, 0])
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[0, 1, 0] > rgb[0, 1, 2]  # near blue, far red


def test_console_script_is_installed(tmp_path):
    exe = Path(sys.executable).with_name('ppd-synth')
    done = subprocess.run([str(exe), '--preview-dir', str(tmp_path), '--frames', '1',
                           '--width', '16', '--height', '12'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'frame_000000.png').is_file()


def test_camera_sequence_bag_has_poses_and_room_cuts(tmp_path, capsys):
    bag = tmp_path / 'walk'
    assert main([str(bag), '--frames', '4', '--width', '24', '--height', '18',
                 '--frames-per-room', '2']) == 0
    assert '/camera/pose: 4 messages' in capsys.readouterr().out
    with BagReader(bag) as reader:
        ids = [m.frame_id for m in reader.messages(['/camera/pose'], decode=False)]
    assert ids == ['world_0', 'world_0', 'world_1', 'world_1']
    assert main([str(tmp_path / 'no_poses'), '--frames', '1', '--width', '8', '--height', '6',
                 '--pose-topic', 'none']) == 0
    with BagReader(tmp_path / 'no_poses') as reader:
        assert '/camera/pose' not in reader.topics
    assert main([str(tmp_path / 'bad'), '--frames-per-room', '0']) == 2
    assert '--frames-per-room' in capsys.readouterr().err
