"""``app.config`` and the app's folders, with Flask 3.1 as the reference: every
loader, namespaces, the instance folder, resources; and engine settings set
through a loader taking effect on a real socket."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import Framework, http_request

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: pip vendors the same parser
    from pip._vendor import tomli as tomllib


def make(fw: Framework, root: Path, **kw: Any) -> Any:
    return fw.App(__name__, static_folder=None, root_path=str(root), **kw)


def user_keys(config: Any) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k.startswith("MY")}


class Settings:
    MY_DEBUG_LEVEL = 3
    MY_NAME = "base"
    lower_case = "ignored"
    _PRIVATE_UPPER = "kept?"


class Production(Settings):
    MY_NAME = "production"


def test_from_object_class_instance_and_import_string(
    fw: Framework, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make(fw, tmp_path)
    app.config.from_object(Production)
    assert user_keys(app.config) == {"MY_DEBUG_LEVEL": 3, "MY_NAME": "production"}
    assert "lower_case" not in app.config
    assert app.config.get("_PRIVATE_UPPER") == "kept?"  # isupper(): Flask keeps it too

    module = f"cfg_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("MY_FROM_MODULE = 'yes'\nignored = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = make(fw, tmp_path)
    app.config.from_object(module)
    app.config.from_object(f"{__name__}.Production")
    assert user_keys(app.config) == {
        "MY_FROM_MODULE": "yes",
        "MY_DEBUG_LEVEL": 3,
        "MY_NAME": "production",
    }


def test_from_mapping(fw: Framework, tmp_path: Path) -> None:
    app = make(fw, tmp_path)
    assert app.config.from_mapping({"MY_A": 1, "my_b": 2}, MY_C=3, my_d=4) is True
    assert user_keys(app.config) == {"MY_A": 1, "MY_C": 3}


def test_from_pyfile_relative_to_root_and_silent(fw: Framework, tmp_path: Path) -> None:
    (tmp_path / "settings.cfg").write_text("MY_SECRET = 'abc'\nMY_N = 2 * 21\nhelper = 1\n")
    app = make(fw, tmp_path)
    assert app.config.from_pyfile("settings.cfg") is True
    assert user_keys(app.config) == {"MY_SECRET": "abc", "MY_N": 42}
    assert app.config.from_pyfile("missing.cfg", silent=True) is False
    with pytest.raises(OSError, match="Unable to load configuration file"):
        app.config.from_pyfile("missing.cfg")


def test_from_pyfile_error_in_the_file_propagates(fw: Framework, tmp_path: Path) -> None:
    (tmp_path / "broken.cfg").write_text("MY_X = 1 / 0\n")
    with pytest.raises(ZeroDivisionError):
        make(fw, tmp_path).config.from_pyfile("broken.cfg")


def test_from_envvar(fw: Framework, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.cfg"
    path.write_text("MY_FROM_ENV = True\n")
    app = make(fw, tmp_path)
    monkeypatch.delenv("MY_SETTINGS", raising=False)
    assert app.config.from_envvar("MY_SETTINGS", silent=True) is False
    with pytest.raises(RuntimeError, match="MY_SETTINGS"):
        app.config.from_envvar("MY_SETTINGS")
    monkeypatch.setenv("MY_SETTINGS", str(path))
    assert app.config.from_envvar("MY_SETTINGS") is True
    assert app.config["MY_FROM_ENV"] is True


def test_from_prefixed_env(fw: Framework, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "MYAPP_MY_INT": "7",
        "MYAPP_MY_BOOL": "false",
        "MYAPP_MY_TEXT": "not json",
        "MYAPP_MY_LIST": "[1, 2]",
        "MYAPP_MY_DICT__NESTED": '"deep"',
        "MYAPP_MY_DICT__OTHER__LEVEL": "1",
        "OTHER_MY_X": "1",
    }.items():
        monkeypatch.setenv(key, value)
    app = make(fw, tmp_path)
    app.config["MY_DICT"] = {"kept": True}
    assert app.config.from_prefixed_env("MYAPP") is True
    assert user_keys(app.config) == {
        "MY_INT": 7,
        "MY_BOOL": False,
        "MY_TEXT": "not json",
        "MY_LIST": [1, 2],
        "MY_DICT": {"kept": True, "NESTED": "deep", "OTHER": {"LEVEL": 1}},
    }
    app = make(fw, tmp_path)
    app.config.from_prefixed_env("MYAPP", loads=str.upper)
    assert app.config["MY_TEXT"] == "NOT JSON"


def test_from_prefixed_env_default_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Flask reads FLASK_*; BustAPI reads BUSTAPI_* (its CLI's prefix too)."""
    monkeypatch.setenv("BUSTAPI_MY_KEY", "1")
    app = make(Framework("bustapi"), tmp_path)
    app.config.from_prefixed_env()
    assert app.config["MY_KEY"] == 1


def test_from_file_json_and_toml(fw: Framework, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"MY_JSON": [1, 2], "lower": 1}))
    (tmp_path / "config.toml").write_text('MY_TOML = "t"\n[MY_TABLE]\nx = 1\n')
    app = make(fw, tmp_path)
    assert app.config.from_file("config.json", load=json.load) is True
    assert app.config.from_file("config.toml", load=tomllib.load, text=False) is True
    assert user_keys(app.config) == {"MY_JSON": [1, 2], "MY_TOML": "t", "MY_TABLE": {"x": 1}}
    assert app.config.from_file("nope.json", load=json.load, silent=True) is False
    with pytest.raises(OSError, match="Unable to load configuration file"):
        app.config.from_file("nope.json", load=json.load)


def test_get_namespace(fw: Framework, tmp_path: Path) -> None:
    app = make(fw, tmp_path)
    app.config.from_mapping(
        IMAGE_STORE_TYPE="fs", IMAGE_STORE_PATH="/var/app/images", IMAGE_STORE_BASE_URL="x"
    )
    assert app.config.get_namespace("IMAGE_STORE_") == {
        "type": "fs",
        "path": "/var/app/images",
        "base_url": "x",
    }
    assert app.config.get_namespace("IMAGE_STORE_", lowercase=False, trim_namespace=False) == {
        "IMAGE_STORE_TYPE": "fs",
        "IMAGE_STORE_PATH": "/var/app/images",
        "IMAGE_STORE_BASE_URL": "x",
    }


def test_config_attributes(fw: Framework, tmp_path: Path) -> None:
    app = make(fw, tmp_path)
    app.secret_key = "s"
    app.testing = True
    app.debug = True
    assert (app.config["SECRET_KEY"], app.config["TESTING"], app.config["DEBUG"]) == (
        "s",
        True,
        True,
    )
    assert "Config" in repr(app.config)


def test_defaults_match_flask(tmp_path: Path) -> None:
    flask_app = make(Framework("flask"), tmp_path)
    bustapi_app = make(Framework("bustapi"), tmp_path)
    for key, value in flask_app.config.items():
        if key in ("DEBUG", "MAX_CONTENT_LENGTH"):
            continue  # see below
        assert bustapi_app.config.get(key, "<missing>") == value, key
    # Deliberate: BustAPI limits request bodies to 16 MiB by default (Flask: no limit),
    # since the engine must bound what it buffers.
    assert bustapi_app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024


# -- folders --------------------------------------------------------------------------------


def write_package(root: Path, fw: Framework) -> str:
    name = f"pkg_{fw.name}_{uuid.uuid4().hex[:8]}"
    pkg = root / name
    pkg.mkdir()
    cls = "Flask" if fw.name == "flask" else "BustAPI"
    (pkg / "__init__.py").write_text(
        f"from {fw.name} import {cls}\n"
        f"app = {cls}(__name__, static_folder=None)\n"
        f"rel = {cls}(__name__, static_folder=None, instance_relative_config=True)\n"
    )
    (pkg / "schema.sql").write_text("CREATE TABLE t (x);\n")
    (root / f"{name}_mod.py").write_text(
        f"from {fw.name} import {cls}\napp = {cls}(__name__, static_folder=None)\n"
    )
    return name


def test_instance_path_is_next_to_the_package_as_in_flask(
    fw: Framework, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path))
    name = write_package(tmp_path, fw)
    pkg = importlib.import_module(name)
    mod = importlib.import_module(f"{name}_mod")
    try:
        # A package: root_path is the package, the instance folder is beside it.
        assert pkg.app.root_path == str(tmp_path / name)
        assert pkg.app.instance_path == str(tmp_path / "instance")
        # A module: both are its folder.
        assert mod.app.root_path == str(tmp_path)
        assert mod.app.instance_path == str(tmp_path / "instance")
        assert pkg.rel.config.root_path == pkg.rel.instance_path
        assert pkg.app.config.root_path == pkg.app.root_path
    finally:
        sys.modules.pop(name, None)
        sys.modules.pop(f"{name}_mod", None)


def test_instance_path_must_be_absolute(fw: Framework) -> None:
    with pytest.raises(ValueError, match="absolute"):
        fw.App(__name__, instance_path="relative/instance")


def test_instance_relative_config_and_resources(fw: Framework, tmp_path: Path) -> None:
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "config.py").write_text("MY_FROM_INSTANCE = 1\n")
    (tmp_path / "schema.sql").write_text("CREATE TABLE ü (x);\n", encoding="utf-8")
    app = make(fw, tmp_path, instance_path=str(instance), instance_relative_config=True)
    assert app.instance_path == str(instance)
    app.config.from_pyfile("config.py")
    assert app.config["MY_FROM_INSTANCE"] == 1

    with app.open_resource("schema.sql") as f:
        assert f.read() == "CREATE TABLE ü (x);\n".encode()
    with app.open_resource("schema.sql", "r", encoding="utf-8") as f:
        assert f.read() == "CREATE TABLE ü (x);\n"
    with pytest.raises(ValueError, match="reading"):
        app.open_resource("schema.sql", "w")

    with app.open_instance_resource("notes.txt", "w") as f:
        f.write("written ü")
    with app.open_instance_resource("notes.txt") as f:
        assert f.read() == "written ü".encode()
    with app.open_instance_resource("notes.txt", "r") as f:
        assert f.read() == "written ü"


def test_blueprint_open_resource(fw: Framework, tmp_path: Path) -> None:
    (tmp_path / "bp.sql").write_text("bp")
    bp = fw.Blueprint("bp", __name__, root_path=str(tmp_path))
    with bp.open_resource("bp.sql") as f:
        assert f.read() == b"bp"


# -- engine settings through the loaders, over a socket --------------------------------------


def upload_app(tmp_path: Path) -> Any:
    from bustapi import BustAPI, request

    app = BustAPI(__name__, root_path=str(tmp_path), static_folder="static")

    @app.post("/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    return app


@pytest.mark.parametrize("loader", ["mapping", "object", "pyfile", "file", "env"])
def test_max_content_length_from_any_loader_takes_effect_over_a_socket(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: str
) -> None:
    app = upload_app(tmp_path)
    if loader == "mapping":
        app.config.from_mapping(MAX_CONTENT_LENGTH=1000)
    elif loader == "object":

        class Limits:
            MAX_CONTENT_LENGTH = 1000

        app.config.from_object(Limits)
    elif loader == "pyfile":
        (tmp_path / "limits.py").write_text("MAX_CONTENT_LENGTH = 1000\n")
        app.config.from_pyfile("limits.py")
    elif loader == "file":
        (tmp_path / "limits.json").write_text('{"MAX_CONTENT_LENGTH": 1000}')
        app.config.from_file("limits.json", load=json.load)
    else:
        monkeypatch.setenv("LIMITS_MAX_CONTENT_LENGTH", "1000")
        app.config.from_prefixed_env("LIMITS")
    server = serve(app)
    ok = http_request(server.port, "POST", "/upload", body=b"x" * 1000)
    assert (ok.status, ok.body) == (200, b"1000")
    too_big = http_request(server.port, "POST", "/upload", body=b"x" * 1001)
    assert too_big.status == 413
    # The test client applies the same limit.
    assert app.test_client().post("/upload", data=b"x" * 1001).status_code == 413


def test_send_file_max_age_default_from_config_reaches_static_files(
    serve: Any, tmp_path: Path
) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app.css").write_text("body{}")
    app = upload_app(tmp_path)
    app.config.from_mapping(SEND_FILE_MAX_AGE_DEFAULT=3600)
    server = serve(app)
    r = http_request(server.port, "GET", "/static/app.css")
    assert r.status == 200
    assert "max-age=3600" in r.headers["cache-control"]


def test_trusted_hosts_is_refused_loudly_not_ignored(tmp_path: Path) -> None:
    """Deliberate difference: Flask 3.1 checks Host against TRUSTED_HOSTS; BustAPI
    does not implement it yet, so setting it fails at once instead of letting every
    Host through."""
    app = upload_app(tmp_path)
    app.config["TRUSTED_HOSTS"] = ["example.test"]
    with pytest.raises(NotImplementedError, match="TRUSTED_HOSTS"):
        app.test_client().get("/")
