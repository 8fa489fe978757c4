"""The README stays a short entry page: at most 200 lines, a contents line that reaches every
section, the sections a new user needs, and links that lead somewhere; models/README.md starts
with where the official weights go."""
import re

README_MAX_LINES = 200
SECTIONS_A_USER_NEEDS = ('Two commands', 'Try it on your own', 'Real ROS 2 install',
                         'Topics and parameters', 'Troubleshooting', 'Documentation')


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_readme_is_short_and_its_contents_line_reaches_every_section(repo_root):
    text = (repo_root / 'README.md').read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    sections = re.findall(r'^## (.+)$', text, flags=re.M)
    for needed in SECTIONS_A_USER_NEEDS:
        assert any(s.startswith(needed) for s in sections), needed
    contents = next(line for line in text.split('\n\n') if line.startswith('**Contents:**'))
    assert set(re.findall(r'\]\(#([\w-]+)\)', contents)) == {_anchor(s) for s in sections}


def test_readme_links_lead_to_files_that_exist(repo_root):
    text = (repo_root / 'README.md').read_text()
    targets = {t.split('#')[0] for t in re.findall(r'\]\(([^)]+)\)', text)
               if not t.startswith(('http', '#'))}
    assert targets, 'no relative links found'
    missing = sorted(t for t in targets if not (repo_root / t).exists())
    assert not missing


def test_models_readme_starts_with_the_official_weights_and_their_licences(repo_root):
    text = (repo_root / 'models' / 'README.md').read_text()
    first_section = text.split('\n## ')[1]
    assert first_section.startswith('Official weights')
    for file, licence in (('ppd.pth', 'Apache-2.0'), ('depth_anything_v2_vitl.pth', 'CC-BY-NC-4.0'),
                          ('moge-2-vitl-normal.pt', 'MIT')):
        row = next(line for line in first_section.splitlines() if f'`models/{file}`' in line)
        assert licence in row, file
