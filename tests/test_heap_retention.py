"""retain_freed_memory: freed large blocks stay in the process, so reusing them page-faults no more.

Runs in a child process so that the test session's own malloc is left as it is.
"""
import subprocess
import sys

import pytest

CHILD = '''
import resource, sys
from ppd_ros.node.heap_retention import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == 'retain' else None
size = 40 << 20

def touch_fresh_block():
    block = bytearray(size)          # zero-filled 40 MB, freed when the function returns
    block[::4096] = b'x' * len(block[::4096])

touch_fresh_block()                   # first use: the pages have to come from the OS
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    touch_fresh_block()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, '-c', CHILD, mode], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt')
def test_retained_heap_reuses_freed_pages_instead_of_faulting_them_in_again():
    applied, retained_faults = _faults('retain')
    _, plain_faults = _faults('plain')
    assert applied == 'True'
    pages = 5 * (40 << 20) // 4096
    assert plain_faults > pages // 2      # plain glibc: each 40 MB block is mmap'd afresh
    assert retained_faults < pages // 50  # retained: the same heap pages every time
