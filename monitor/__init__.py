"""qualmon's operator side: settings, CLI, HTTP API, history store, embedded broker, simulator.

Everything here is built from one :class:`monitor.settings.Settings` read once at start and
passed down; nothing reads the environment on its own.
"""
