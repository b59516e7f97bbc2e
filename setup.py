"""What pyproject.toml cannot say about the packages: every package under the source roots is found
by setuptools' discovery (a provider's folder under providers/ needs no line anywhere), and the
built-in taxonomies (rules/) install as the data package ``errortaxa.rules``. Everything else is
in pyproject.toml."""

from setuptools import find_namespace_packages, setup

SOURCE_ROOTS = ("engine", "providers", "apps", "server")  # each holds errortaxa/<packages>
NOT_PACKAGES = ["*__pycache__*", "*.egg-info*"]

package_dir = {"errortaxa.rules": "rules"}
for root in SOURCE_ROOTS:
    for package in find_namespace_packages(root, include=["errortaxa.*"], exclude=NOT_PACKAGES):
        package_dir[package] = f"{root}/{package.replace('.', '/')}"
for package in find_namespace_packages("rules", exclude=NOT_PACKAGES):
    package_dir[f"errortaxa.rules.{package}"] = f"rules/{package.replace('.', '/')}"

setup(packages=sorted(package_dir), package_dir=package_dir)
