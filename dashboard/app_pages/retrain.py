"""Retrain: untrained examples against the threshold, starting a job, its live progress, promotion."""

import streamlit as st

from dashboard import data, ui, wording
from feedback_core import queries
from feedback_core.errors import DatabaseUnavailableError

label = queries.version_label


def finished_message(job: dict) -> tuple[str, str]:
    """Return the flash kind and message that say how a finished job ended."""
    if job["status"] == "failed":
        return "error", f"Retrain job {job['job_id']} failed: {job['error'] or 'no reason was recorded'}"
    version_id = job["result_version_id"]
    if version_id is None:
        if (job["stage"] or "").startswith("unchanged"):
            # Trained on exactly the data of the newest version: the same model, so no copy.
            return (
                "info",
                f"Retrain job {job['job_id']} added no version: {job['stage'].removeprefix('unchanged: ')}",
            )
        return "success", f"Retrain job {job['job_id']} succeeded"
    promoted = data.get_system().get_model_version(version_id)["status"] == "active"
    then = (
        "and is now the active version"
        if promoted
        else "as a candidate: compare it below and promote it if you like"
    )
    return "success", f"Retrain job {job['job_id']} succeeded: {label(version_id)} was trained {then}"


def recover_dead_job(job: dict) -> None:
    """Fail the running job whose worker died (it would show as running for ever) and say so."""
    if job["status"] != "running":
        return  # no read at all: only a running job can have lost its worker
    recovered = data.get_system().recover_stopped_jobs()
    failed, again = recovered["failed"], recovered["queued_again"]
    if not failed:
        return
    then = f"The retrain was queued again as job {again}." if again else "You can start another retrain."
    for job_id in failed:
        worker = f" ({job['worker_id']})" if job_id == job["job_id"] else ""
        ui.flash(
            "warning",
            f"Retrain job {job_id} was marked failed: its worker{worker} stopped while the job ran, "
            f"and its examples went back to the pool. {then}",
        )
    data.refresh()
    st.rerun(scope="app")  # the page's numbers were read before the recovery: read them again


@st.fragment(run_every="2s")
def job_progress(job_id: int) -> None:
    """Poll one job without blocking the page; redraw the whole page once it has finished.

    Its first run is part of the page's: a job whose worker died is failed when the page opens,
    and when the worker dies while someone watches.
    """
    try:
        job = data.get_system().get_retrain_job(job_id)  # a primary-key read, deliberately uncached
        recover_dead_job(job)
    except DatabaseUnavailableError as exc:  # a fragment rerun is outside the page's error handling
        st.warning(f"Progress unavailable: {exc.message}")
        return
    if job["status"] in ("succeeded", "failed"):
        # The page, drawn again, says how it ended (the job it watched): once.
        data.refresh()
        st.rerun(scope="app")
    st.progress(
        min(max(int(job["progress"] or 0), 0), 100) / 100,
        text=f"Job {job_id}: {job['status']} · {job['stage']} ({job['progress']}%)",
    )
    if job["status"] == "queued":
        st.caption("Queued: a worker (`feedback-core worker`) picks it up and reports progress here.")


st.title("Retrain")
# Read now, not from the cache: a candidate trained a minute ago (by the CLI, a worker) must be
# the one shown, and the one a promotion is checked against.
status = data.fresh(queries.get_retrain_status)
pending, threshold = status["untrained_examples"], status["retrain_threshold"]
cols = st.columns(3)
cols[0].metric("Untrained examples", f"{pending:,}{'+' if status['untrained_capped'] else ''}")
cols[1].metric("Automatic retrain at", f"{threshold:,}")
cols[2].metric(
    "Active version", label(status["active_version_id"]) if status["active_version_id"] else "none"
)
st.progress(
    min(pending / threshold, 1.0),
    text=f"{min(pending, threshold):,} of the {threshold:,} examples that queue a retrain",
)

job = status["job"]
WATCHED = "retrain_watched_job"  # the job this page last showed under way
if job is not None:
    st.session_state[WATCHED] = int(job["job_id"])
    st.subheader("Under way")
    job_progress(int(job["job_id"]))
elif WATCHED in st.session_state:
    # It ended between two views (the page reads the jobs afresh): say how, once.
    ended = data.get_system().get_retrain_job(st.session_state.pop(WATCHED))
    if ended["status"] in ("succeeded", "failed"):
        ui.show_message(*finished_message(ended))
if ui.action_button(
    "Start a retrain",
    "retrain.request",
    key="start_retrain",
    disabled=job is not None,
    type="primary",
    icon=":material/play_arrow:",
):
    ui.ask_to_confirm(
        "retrain",
        f"Start a retrain now? It trains a candidate version on the ratings and {pending:,} untrained negative "
        "examples; the candidate is promoted only if it beats the active version (or you promote it below).",
        "Start retrain",
    )
if job is not None:
    st.caption("A job is already queued or running; one at a time.")

st.subheader("Candidate against the active version")
candidate = status["candidate_version_id"]
promoting = ui.pending_action("promote_candidate")
if promoting is not None and (
    promoting["version_id"] != candidate or promoting["expected_active"] != status["active_version_id"]
):
    ui.withdraw_pending(
        f"Nothing was promoted: the candidate or the active version changed while you were asked to "
        f"promote {label(promoting['version_id'])}. Look at the comparison below again."
    )
if candidate is None and status["superseded_candidate_id"] is not None:
    older = label(status["superseded_candidate_id"])
    st.info(
        f"No candidate waiting: {older}, the newest candidate, was trained before "
        f"{label(status['active_version_id'])}, the active version, and is not offered here. To serve "
        f"it anyway, compare and activate it on Model versions."
    )
elif candidate is None:
    st.info("No candidate waiting: every trained version has been promoted or retired.")
else:
    baseline = status["baseline_version_id"]
    # No version active yet: the candidate was set beside the prior model, which serves meanwhile.
    against = label(baseline) if baseline is not None else "prior model"
    comparison = ui.named_metrics(status["comparison"]).rename(
        columns={"active": against, "candidate": label(candidate)}
    )
    if status["candidate_note"]:
        st.text(f"Promotion check at training: {status['candidate_note']}")
    if baseline is not None and baseline != status["active_version_id"]:
        st.warning(
            f"These figures compare {label(candidate)} with {label(baseline)}, the version active when it "
            f"was trained; {label(status['active_version_id'])} is active now. Start a retrain to compare "
            "a candidate with it."
        )
    elif baseline is not None and not status["baseline_on_same_examples"]:
        st.caption(
            f"{label(baseline)}'s figures are its own, from the examples it was evaluated on, not the "
            "candidate's: the difference is indicative only."
        )
    if baseline is None and status["baseline_on_same_examples"]:
        st.caption(
            f"No version was active when {label(candidate)} was trained: it was set beside the prior "
            f"model, which served meanwhile, on the {status['compared_examples']:,} examples known then "
            "(the prior model trained on none of them)."
        )
    if status["compared_since"] is not None:
        st.caption(
            f"Both on the {status['compared_examples']:,} examples that came in after {label(baseline)} was "
            f"trained ({status['compared_since'][:19]}): a version scored on examples it trained on looks "
            "better than it is."
        )
    ui.show_table(comparison, "candidate_vs_active")
    gain = status["candidate_gain"]
    if gain is not None:
        # The evidence the check decided on, not only its conclusion.
        st.caption(f"{wording.fmt_gain(gain, against)}.")
    # The page's main action only for a candidate training found better: one it judged no
    # better can still be promoted, but is not offered as the obvious next step.
    passed = status["candidate_passed"] is not False
    if not passed:
        # (Refused for a comparison it lost, or for the active version changing while it trained.)
        st.caption(
            f"Training did not promote {label(candidate)}: the note above says why. Read it before promoting."
        )
    if ui.action_button(
        f"Promote {label(candidate)}",
        "model.activate",
        key="promote_candidate",
        type="primary" if passed else "secondary",
    ):
        ui.ask_to_confirm(
            "activate",
            wording.promotion_question(
                label(candidate),
                label(status["active_version_id"]),
                passed,
                status["candidate_note"],
                None if gain is None else wording.fmt_gain(gain, against),
            ),
            f"Promote {label(candidate)}",
            origin="promote_candidate",
            version_id=int(candidate),
            expected_active=status["active_version_id"],
        )

st.subheader("History")
history = data.fresh(queries.list_job_history, limit=50)
if history.empty:
    st.info("No retrain has run yet.")
else:
    ui.show_table(
        history,
        "retrain_jobs",
        {
            "created_at": ui.moment_column("queued", seconds=True),
            "started_at": ui.moment_column("started", seconds=True),
            "finished_at": ui.moment_column("finished", seconds=True),
            "progress": st.column_config.ProgressColumn(min_value=0, max_value=100, format="%d%%"),
            "stage": st.column_config.TextColumn(width="large"),  # "unchanged: nothing new since ..."
        },
    )
