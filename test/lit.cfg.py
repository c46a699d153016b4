# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "swan"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
# unit/ is GoogleTest; fuzz/ holds fuzzer seed corpora, not lit tests.
config.excludes = ["unit", "lib", "fuzz", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.swan_obj_root, "test")

# Debian ships FileCheck and not only under versioned names in /usr/bin:
# the project's tools come first, then LLVM's.
llvm_config.with_environment(
    "PATH", [config.swan_tools_dir, config.llvm_tools_dir], append_path=True)
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"
config.substitutions.append(("%mlir_lib_dir", config.mlir_lib_dir))
# RUN lines that pin x86 instructions (`%if x86 %{ ... %}`).
if os.uname().machine == "x86_64":
    config.available_features.add("x86")
