"""Types that travel between tasks by reference: files, directories, dataframes, arrays.

Import the submodules: ``caddis.types.file``, ``caddis.types.directory``,
``caddis.types.structured``, ``caddis.types.numpy``, ``caddis.types.pickle``.
"""
