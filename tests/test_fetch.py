"""Sources catalogue and fetch: against a local HTTP server and the shared data directory."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from quarters.catalogue import (
    CatalogueError,
    attribution_texts,
    check_local,
    format_status_table,
    load_catalogue,
)
from quarters.fetch import FetchError, RichProgressBar, fetch

SHARED_DATA = Path(
    os.environ.get("QUARTERS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
PLAIN = b"name;value\nHalle (Saale);238762\nGera;93125\n"
MEMBERS = {
    "archive/inner/a.txt": b"first member\n",
    "archive/inner/b.txt": b"second member\n",
    "archive/unused.txt": b"not catalogued\n",
}
EXPECTED_IDS = {
    "bkg-vg5000-2021",
    "destatis-gv-2019",
    "halle-stadtviertel-facts",
    "places-facts",
    "gera-ortsteile-facts",
    "gera-statistische-bezirke-facts",
    "wikipedia-halle-stadtteile",
    "osm-tiles",
    "quarters-pilot-quarters",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving a plain file and a zip from a tmp dir."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "table.csv").write_bytes(PLAIN)
    with zipfile.ZipFile(root / "bundle.zip", "w") as archive:
        for name, data in MEMBERS.items():
            archive.writestr(name, data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def write_catalogue(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def make_catalogue(tmp_path: Path, base_url: str, *, plain_hash: str | None = None) -> Path:
    """A catalogue with a plain file, a zip and a manual entry, pointing at the local server."""
    plain_hash = plain_hash or sha256(PLAIN)
    return write_catalogue(
        tmp_path,
        f"""
[plain]
name = "Plain table"
publisher = "Test publisher"
licence = "CC BY 4.0"
licence_url = "https://creativecommons.org/licenses/by/4.0/"
attribution = "© Test publisher"
landing_page = "{base_url}/"
download_url = "{base_url}/table.csv"
sha256 = "{plain_hash}"
files = ["raw/plain/table.csv"]

[zipped]
name = "Zipped pair"
publisher = "Test publisher"
licence = "CC BY 4.0"
licence_url = "https://creativecommons.org/licenses/by/4.0/"
attribution = "© Test publisher"
attribution_derived = "© Test publisher (Daten verändert)"
landing_page = "{base_url}/"
download_url = "{base_url}/bundle.zip"
unpack = "zip"
files = ["raw/zipped/a.txt", "raw/zipped/b.txt"]

[zipped.archive_members]
"raw/zipped/a.txt" = "archive/inner/a.txt"
"raw/zipped/b.txt" = "archive/inner/b.txt"

[zipped.files_sha256]
"raw/zipped/a.txt" = "{sha256(MEMBERS["archive/inner/a.txt"])}"
"raw/zipped/b.txt" = "{sha256(MEMBERS["archive/inner/b.txt"])}"

[by-hand]
name = "Only by hand"
publisher = "Some office"
licence = "dl-de/by-2-0"
licence_url = "https://www.govdata.de/dl-de/by-2-0"
attribution = "© Some office"
landing_page = "https://example.org/where-to-get-it"
obtain = "Order it on the landing page and unzip it."
files = ["raw/by-hand/data.csv"]
""",
    )


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def test_plain_file_is_fetched_and_hash_checked(tmp_path: Path, served: tuple[str, Path]) -> None:
    base_url, _ = served
    catalogue = load_catalogue(make_catalogue(tmp_path, base_url))
    data_dir = tmp_path / "data"

    [result] = fetch(catalogue, data_dir, only=["plain"], progress=False)

    assert result.status == "downloaded"
    target = data_dir / "raw/plain/table.csv"
    assert result.paths == (target,)
    assert target.read_bytes() == PLAIN
    assert files_under(data_dir) == [target]  # no temporary files left
    # a second run finds the file with the right checksum and downloads nothing
    [again] = fetch(catalogue, data_dir, only="plain", progress=False)
    assert again.status == "present"


def test_zip_is_unpacked_to_catalogued_paths(tmp_path: Path, served: tuple[str, Path]) -> None:
    base_url, _ = served
    catalogue = load_catalogue(make_catalogue(tmp_path, base_url))
    data_dir = tmp_path / "data"

    [result] = fetch(catalogue, data_dir, only=["zipped"], progress=False)

    assert result.status == "downloaded"
    assert (data_dir / "raw/zipped/a.txt").read_bytes() == MEMBERS["archive/inner/a.txt"]
    assert (data_dir / "raw/zipped/b.txt").read_bytes() == MEMBERS["archive/inner/b.txt"]
    assert set(result.paths) == {data_dir / "raw/zipped/a.txt", data_dir / "raw/zipped/b.txt"}
    # uncatalogued members are not placed anywhere, the unpack folder is gone
    assert not any(p.name == "unused.txt" for p in files_under(data_dir))
    assert not (data_dir / "downloads/zipped/unpacked").exists()
    [status] = check_local(catalogue, data_dir)[1:2]
    assert status.state == "ok" and status.checksums_match is True


def test_wrong_hash_is_refused_and_nothing_left(tmp_path: Path, served: tuple[str, Path]) -> None:
    base_url, _ = served
    wrong = "0" * 64
    catalogue = load_catalogue(make_catalogue(tmp_path, base_url, plain_hash=wrong))
    data_dir = tmp_path / "data"

    with pytest.raises(FetchError) as caught:
        fetch(catalogue, data_dir, only=["plain"], progress=False)

    message = str(caught.value)
    assert "'plain'" in message
    assert f"expected sha256: {wrong}" in message
    assert f"received sha256: {sha256(PLAIN)}" in message
    assert files_under(data_dir) == []
    assert not data_dir.exists()  # the directories the download created are gone too


def test_wrong_member_hash_in_zip_is_refused(tmp_path: Path, served: tuple[str, Path]) -> None:
    base_url, root = served
    with zipfile.ZipFile(root / "bundle.zip", "w") as archive:
        archive.writestr("archive/inner/a.txt", b"tampered\n")
        archive.writestr("archive/inner/b.txt", MEMBERS["archive/inner/b.txt"])
    catalogue = load_catalogue(make_catalogue(tmp_path, base_url))
    data_dir = tmp_path / "data"

    with pytest.raises(FetchError, match="'zipped'.*archive member archive/inner/a.txt"):
        fetch(catalogue, data_dir, only=["zipped"], progress=False)

    assert files_under(data_dir) == []


def test_entry_without_download_url_is_manual(tmp_path: Path, served: tuple[str, Path]) -> None:
    base_url, _ = served
    catalogue = load_catalogue(make_catalogue(tmp_path, base_url))
    data_dir = tmp_path / "data"

    [result] = fetch(catalogue, data_dir, only=["by-hand"], progress=False)

    assert result.status == "manual"
    assert result.landing_page == "https://example.org/where-to-get-it"
    assert "https://example.org/where-to-get-it" in result.message
    assert "Order it on the landing page" in result.message
    assert "raw/by-hand/data.csv" in result.message
    assert not data_dir.exists()


def test_unknown_dataset_id_is_refused(tmp_path: Path, served: tuple[str, Path]) -> None:
    base_url, _ = served
    catalogue = load_catalogue(make_catalogue(tmp_path, base_url))
    with pytest.raises(CatalogueError, match="No dataset 'elsewhere'.*Known ids: plain"):
        fetch(catalogue, tmp_path / "data", only=["elsewhere"], progress=False)


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_progress_bars(
    tmp_path: Path, served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tqdm_installed: bool
) -> None:
    base_url, _ = served
    if not tqdm_installed:  # then fetch hands pooch the rich-based bar
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name == "tqdm" else real_find_spec(name, *a),
        )
    catalogue = load_catalogue(make_catalogue(tmp_path, base_url))
    results = fetch(catalogue, tmp_path / "data", only=["plain", "zipped"], progress=True)
    assert [r.status for r in results] == ["downloaded", "downloaded"]


def test_rich_progress_bar_acts_like_tqdm() -> None:
    bar = RichProgressBar("test")
    bar.total = 10
    bar.update(4)
    bar.reset()
    bar.update(10)
    bar.close()
    bar.close()


def test_check_local_against_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data directory not found: {SHARED_DATA}")
    statuses = {s.dataset_id: s for s in check_local(load_catalogue(), SHARED_DATA)}

    for dataset_id in ("bkg-vg5000-2021", "destatis-gv-2019"):
        status = statuses[dataset_id]
        assert status.files_present, status.summary
        assert status.checksums_match is True, status.summary
        assert status.state == "ok"
        assert all(check.matches for check in status.checks)
    assert "raw/bkg-vg5000-2021/VG5000_GEM.shp" in {
        c.path for c in statuses["bkg-vg5000-2021"].checks
    }
    assert statuses["osm-tiles"].state == "nothing stored"

    console = Console(width=200, record=True)
    console.print(format_status_table(statuses.values()))
    text = console.export_text()
    assert "bkg-vg5000-2021" in text and "destatis-gv-2019" in text


def test_real_catalogue_loads_with_licence_and_attribution() -> None:
    catalogue = load_catalogue()

    assert set(catalogue.ids) == EXPECTED_IDS
    for dataset in catalogue:
        assert dataset.licence.strip(), dataset.id
        assert dataset.licence_url.startswith("https://"), dataset.id
        assert dataset.attribution.strip(), dataset.id
        assert dataset.landing_page or dataset.obtain, dataset.id
    assert catalogue["bkg-vg5000-2021"].attribution == "© GeoBasis-DE / BKG 2021"
    assert catalogue["bkg-vg5000-2021"].attribution_derived == (
        "© GeoBasis-DE / BKG 2021 (Daten verändert)"
    )
    assert catalogue["destatis-gv-2019"].sha256 == (
        "34aa727cfd2f7f042852476c1fe0865623c23b8f2a6108976b3e1692d8d0ca30"
    )
    texts = attribution_texts(catalogue)
    assert "© GeoBasis-DE / BKG 2021" in texts
    assert len(texts) == len(set(texts))
    assert "© GeoBasis-DE / BKG 2021 (Daten verändert)" in attribution_texts(
        catalogue, derived=True, only=["bkg-vg5000-2021"]
    )


def test_real_catalogue_entries_without_download_url_are_manual_or_present(
    tmp_path: Path,
) -> None:
    results = fetch(load_catalogue(), tmp_path / "empty", progress=False)
    by_id = {r.dataset_id: r for r in results}
    assert by_id["bkg-vg5000-2021"].status == "manual"
    assert "gdz.bkg.bund.de" in by_id["bkg-vg5000-2021"].message
    assert by_id["osm-tiles"].status == "skipped"
    assert by_id["quarters-pilot-quarters"].status == "skipped"
    assert not (tmp_path / "empty").exists()


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = write_catalogue(
        tmp_path,
        """
[typo]
name = "A dataset"
publisher = "Someone"
licence = "CC BY 4.0"
licence_url = "https://creativecommons.org/licenses/by/4.0/"
attribution = "© Someone"
landing_page = "https://example.org/"
licnese_note = "typo in the key"
""",
    )
    with pytest.raises(CatalogueError, match="dataset 'typo': unknown key 'licnese_note'"):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('files = ["/etc/passwd"]', "must be a relative path"),
        ('files = ["../outside.csv"]', "must be a relative path"),
        ('download_url = "ftp://example.org/a.csv"\nfiles = ["a.csv"]', "https:// or http://"),
        ('download_url = "https://example.org/a.zip"\nfiles = ["a", "b"]', "exactly one file"),
        ('sha256 = "xyz"', "sha256"),
    ],
)
def test_broken_entries_are_refused(tmp_path: Path, extra: str, expected: str) -> None:
    path = write_catalogue(
        tmp_path,
        f"""
[broken]
name = "A dataset"
publisher = "Someone"
licence = "CC BY 4.0"
licence_url = "https://creativecommons.org/licenses/by/4.0/"
attribution = "© Someone"
landing_page = "https://example.org/"
{extra}
""",
    )
    with pytest.raises(CatalogueError, match=expected) as caught:
        load_catalogue(path)
    assert "dataset 'broken'" in str(caught.value)
