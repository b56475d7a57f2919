"""The CPU count the worker defaults follow: cgroup quotas (v1, v2), affinity, host."""

from pathlib import Path

import pytest

from wsgistack import cpus

FIXTURES = Path(__file__).parent / "cgroup_fixtures"


# (fixture, the quota in CPUs it holds, the count with 8 host CPUs and no affinity mask)
CASES = [
    ("v1-docker-cpus-1.5", 1.5, 2),
    ("v1-docker-no-quota", None, 8),
    ("v1-host-pod-limit", 1.0, 1),
    ("v2-namespace-cpus-1", 1.0, 1),
    ("v2-namespace-max", None, 8),
    ("v2-namespace-fraction-0.5", 0.5, 1),
    ("v2-namespace-fraction-2.5", 2.5, 3),
    ("v2-host-pod-limit", 2.0, 2),
]


@pytest.mark.parametrize(("fixture", "quota", "available"), CASES)
def test_quota_from_cgroup_files(fixture: str, quota: float | None, available: int) -> None:
    limit = cpus.detect(FIXTURES / fixture, affinity_count=8, host=8)
    assert limit.quota == quota
    assert limit.available == available
    if quota is None:
        assert limit.quota_source is None
    else:
        # the source names the file as the process sees it, not the fixture path
        assert limit.quota_source.startswith("/sys/fs/cgroup/"), limit.quota_source


def test_v1_source_names_the_quota_and_period() -> None:
    limit = cpus.detect(FIXTURES / "v1-docker-cpus-1.5", affinity_count=2, host=2)
    assert limit.quota_source == "/sys/fs/cgroup/cpu/cpu.cfs_quota_us: 150000 / 100000"


def test_the_tightest_ancestor_wins() -> None:
    # v2-host-pod-limit: the container scope says max, the pod slice 2 CPUs
    limit = cpus.detect(FIXTURES / "v2-host-pod-limit", affinity_count=8, host=8)
    assert "kubepods-burstable-pod1234.slice/cpu.max: 200000 100000" in limit.quota_source


def test_affinity_mask_caps_the_quota() -> None:
    limit = cpus.detect(FIXTURES / "v2-namespace-fraction-2.5", affinity_count=2, host=8)
    assert (limit.quota, limit.affinity, limit.available) == (2.5, 2, 2)


def test_no_cgroup_files_falls_back_to_affinity_then_host(tmp_path: Path) -> None:
    assert cpus.detect(tmp_path, affinity_count=3, host=8).available == 3
    assert cpus.detect(tmp_path, affinity_count=None, host=8).available == 8
    # nothing known at all: one worker, never zero
    assert cpus.detect(tmp_path, affinity_count=None, host=None).available == 1


@pytest.mark.parametrize("content", ["", "garbage", "max", "0 100000", "100000 0", "1 2 3"])
def test_unreadable_cpu_max_means_no_quota(tmp_path: Path, content: str) -> None:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text("0::/\n")
    (tmp_path / "proc/self/mountinfo").write_text(
        "30 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    )
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/cpu.max").write_text(content + "\n")
    assert cpus.detect(tmp_path, affinity_count=4, host=4).quota is None


def test_this_process_gets_at_least_one() -> None:
    limit = cpus.detect()
    assert limit.available >= 1
    assert limit.available <= (limit.host or limit.available)
    assert cpus.available_cpus() == limit.available
