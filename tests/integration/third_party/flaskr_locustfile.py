"""A Locust scenario for flaskr (tests/integration/third_party): the index
page, which reads every post from its database, checked for flaskr's title."""

from locust import FastHttpUser, constant, task


class Index(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        with self.client.get("/", catch_response=True) as resp:
            if "<title>Posts - Flaskr</title>" not in resp.text:
                resp.failure("not flaskr's index")
