"""ament_python package definition for ppd_ros (also installable with plain pip)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'ppd_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, PACKAGE + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + PACKAGE + '/models', ['models/README.md', 'models/manifest.yaml']
         + glob('models/tiny_*.safetensors')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ppd_ros maintainers',
    maintainer_email='ppd-ros@example.com',
    description='Pixel-Perfect Depth (PPD) monocular depth and point clouds for ROS 2.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'depth_node = ppd_ros.node.depth_node:main',
            'ppd-predict = ppd_ros.cli.predict:main',
            'ppd-export = ppd_ros.cli.export:main',
            'ppd-fetch = ppd_ros.model.fetch:main',
            'ppd-eval = ppd_ros.evaluation.cli:main',
            'ppd-synth = ppd_ros.synthetic.cli:main',
            'ppd-train = ppd_ros.training.cli:main',
            'ppd-demo = ppd_ros.demo:main',
        ],
    },
)
