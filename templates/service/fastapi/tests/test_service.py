"""The {{name}} service loads plugins as RUNTIME.md says, with a tiny plugin made here."""

import textwrap

from fastapi.testclient import TestClient

from mmf_service.main import create_app

PLUGIN = '''
class EchoPlugin:
    class metadata:
        name = "echo"
        version = "1.2.3"

    async def initialize(self, context):
        if context.config.get("fail"):
            raise RuntimeError("told to fail")
        self.word = context.config["word"]

    async def health_check(self):
        return {"healthy": True}

    def get_router(self):
        from fastapi import APIRouter
        router = APIRouter()

        @router.get("/echo")
        async def echo():
            return {"word": self.word}

        return router

    def get_metrics(self):
        return {"words_total": 1}
'''


def layout(tmp_path, config):
    plugin = tmp_path / "plugins" / "echo"
    (plugin / "echo_plugin").mkdir(parents=True)
    (plugin / "pyproject.toml").write_text(
        '[project]\nname = "echo"\nversion = "1.2.3"\n'
        '[project.entry-points."mmf.plugins"]\necho = "echo_plugin:EchoPlugin"\n'
    )
    (plugin / "echo_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "mmf.yaml").write_text("environment: test\nservice:\n  name: {{name}}\n  metrics:\n    path: /metrics\n")
    (conf / "echo.yaml").write_text(config)
    return {
        "MMF_ENVIRONMENT": "test",
        "MMF_PLUGINS": "echo",
        "MMF_CONFIG_DIR": str(conf),
        "MMF_PLUGIN_DIR": str(tmp_path / "plugins"),
    }


def test_a_loaded_plugin_makes_the_service_ready_and_serves_its_routes_and_metrics(tmp_path):
    with TestClient(create_app(layout(tmp_path, "word: hi\n"))) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["plugins"] == [{"name": "echo", "state": "loaded", "version": "1.2.3", "reason": ""}]
        assert client.get("/echo").json() == {"word": "hi"}
        metrics = client.get("/metrics").text
        assert 'mmf_plugin_up{plugin="echo",version="1.2.3"} 1' in metrics
        assert 'mmf_plugin_requests_total{plugin="echo",method="GET",route="/echo",code="200"} 1' in metrics
        assert 'mmf_plugin_metric{plugin="echo",metric="words_total"} 1.0' in metrics


def test_a_failing_plugin_keeps_the_service_alive_but_not_ready_and_says_why(tmp_path):
    with TestClient(create_app(layout(tmp_path, "fail: true\n"))) as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/health").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["plugins"] == [
            {"name": "echo", "state": "failed", "version": "1.2.3", "reason": "RuntimeError: told to fail"}
        ]
        assert 'mmf_plugin_up{plugin="echo",version="1.2.3"} 0' in client.get("/metrics").text
