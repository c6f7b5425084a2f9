"""Timers in actions: order, arguments, clearing, intervals, real elapsed time; and
the action's time limit counts time spent waiting on them."""

from __future__ import annotations


def test_timeouts_fire_in_due_order_with_their_arguments(run):
    code = """
      const seen = [];
      const started = Date.now();
      await new Promise((done) => {
        setTimeout((x) => seen.push(x), 30, "late");
        setTimeout((x, y) => seen.push(x + y), 10, "ear", "ly");
        const never = setTimeout(() => seen.push("cleared"), 20);
        clearTimeout(never);
        setTimeout(done, 50);
      });
      return [seen, Date.now() - started >= 50];
    """
    assert run(code) == [["early", "late"], True]


def test_an_interval_repeats_until_cleared(run):
    code = """
      let n = 0;
      await new Promise((done) => {
        const id = setInterval(() => { n++; if (n === 3) { clearInterval(id); done(); } }, 5);
      });
      await new Promise((done) => setTimeout(done, 30));
      return n;
    """
    assert run(code) == 3


def test_waiting_counts_toward_the_actions_time_limit(run):
    out = run.outcome(
        "await new Promise((done) => setTimeout(done, 5000)); return 1;", time_limit_s=0.3
    )
    assert out.error is not None
    assert out.error.message == "Function execution timed out (maximum duration: 0.3s)"


def test_a_call_may_return_with_timers_still_set(run):
    assert run("setTimeout(() => {}, 60000); return 'done';") == "done"
