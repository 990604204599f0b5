# setup.py - only to remember, in the installed package (weft/_where.py), the build tree it was
# installed from, so that `pip install ./python` after `make` finds build/lib/libweft.so
# without WEFT_SO_PATH. BUILD=DIR (make's BUILD: relative to the repository, or absolute)
# names another build tree. Everything else is in pyproject.toml.
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        libdir = os.path.join(os.path.dirname(here), os.environ.get("BUILD", "build"), "lib")
        target = os.path.join(self.build_lib, "weft", "_where.py")
        with open(target, "w") as f:
            f.write("# Written by setup.py: where libweft was built when this was installed.\n")
            f.write("BUILD_LIBDIRS = [%r]\n" % libdir)


setup(cmdclass={"build_py": BuildPy})
