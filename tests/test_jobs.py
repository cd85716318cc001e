from battery_seg.jobs import Progress, run_job


def _job(n, log):
    try:
        for i in range(n):
            yield Progress(i + 1, n, f"step {i + 1}")
        return "done"
    finally:
        log.append("cleaned up")


def test_run_job_returns_the_result_and_reports_progress():
    seen, log = [], []
    assert run_job(_job(3, log), seen.append) == "done"
    assert [e.step for e in seen] == [1, 2, 3]
    assert seen[-1].fraction == 1.0
    assert log == ["cleaned up"]


def test_closing_a_job_runs_its_cleanup():
    log = []
    job = _job(5, log)
    next(job)
    job.close()  # what a napari worker's quit() amounts to at the next yield
    assert log == ["cleaned up"]
