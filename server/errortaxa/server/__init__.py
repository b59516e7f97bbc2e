"""The ErrorTaxa gRPC server (no rule logic: it calls the engine).

``main(argv)`` is ``errortaxa serve``; ``build_server(config)`` starts one in-process (tests).
"""

from errortaxa.server.app import RunningServer, build_server, main
from errortaxa.server.config import ConfigError, ServerConfig, load_config

__all__ = ["ConfigError", "RunningServer", "ServerConfig", "build_server", "load_config", "main"]
