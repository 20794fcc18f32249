"""Hardening tools: ``fuzz`` (hypothesis against the handler and the gateway), ``faults``
(every fault the emulator must survive), ``overload`` (3x capacity behind the stage throttle).
``faultfunctions/`` holds the misbehaving functions they deploy."""
