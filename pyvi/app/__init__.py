"""The application: the ``pyvi`` command line and the report it writes, built on the library.

- :mod:`pyvi.app.cli`: ``pyvi`` (and ``python -m pyvi``): ``report``, ``banana``, ``hmc``, ``vae``,
  ``backends``; :mod:`pyvi.app.vae_cli`: the ``pyvi vae`` subcommand (also standalone);
  :mod:`pyvi.app.command`: the error contract both run a command under (neither imports the other).
- :mod:`pyvi.app.pipeline`: one ``run_*`` per part of the problem set, each writing its figures, a
  markdown section and its numbers into a folder.
- :mod:`pyvi.app.plots` and :mod:`pyvi.app.vae_plots`: the figures (matplotlib, Agg backend);
  :mod:`pyvi.app.report`: the markdown sections as one self-contained ``index.html``.

The layers: this package imports the library (``pyvi.targets``, ``pyvi.hmc``, ``pyvi.vi``,
``pyvi.vae``, ...), never the reverse (tests/test_layers.py checks it). Nothing here is imported
by ``import pyvi``, and building the command line's parser does not import torch, so
``pyvi --help`` stays fast.
"""

__all__: list[str] = []
