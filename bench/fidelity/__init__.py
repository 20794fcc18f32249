"""``python -m bench.fidelity``: the emulator's figures held against published AWS measurements.

Modules: ``reference`` (the AWS figures, their sources and dates, and the tolerances, fixed
before measuring), ``functions`` (the functions run and their emulator configuration),
``measure`` (each measurement through the Invoke API), ``table`` (rows and verdicts), ``run``
(the order, the emulators, the results document). docs/fidelity.md says what each row predicts.
"""
