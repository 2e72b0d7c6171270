"""The drill report: report.html, report.md, JUnit, the signed manifest and run comparison.

Everything here reads a run directory -- evidence.json and the history -- and
never a live target, so `kdrill report RUN_DIR` rebuilds what the drill wrote
(identical apart from the generation time). Data flows one way: evidence and
history -> facts (`load`) -> plot, layers, diagnosis -> html / markdown / junit;
`manifest` hashes and signs whatever the run wrote, last. Nothing outside the
CLI and the runner imports this package.
"""
