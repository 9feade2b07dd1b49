"""Task plugins: how propeller runs a task attempt.

Every plugin implements :class:`~caddis_propeller.plugins.base.Plugin` (start, check, abort,
finalize) and is picked by ``TaskTemplate.type``. :class:`~caddis_propeller.plugins.base.
PluginRunner` adapts the registry to the engine's ``TaskRunner``. The default plugin is
:class:`~caddis_propeller.plugins.process.ProcessPlugin`: attempts as local OS processes
(fresh or on warm workers) that outlive a propeller restart.
"""
