"""The staff search page in headless Chromium, against the real services.

Run by scripts/test-browser, which starts PostgreSQL, osmem-server and the
three services and exports WRITE_API_ADDR, SEARCH_API_ADDR, DATABASE_URL,
ORDER_ADMIN, PSQL, AUTH_JWT_SECRET and SCREENSHOTS. Every check is made on what
a user sees (the DOM), compared with the API's own answer where it has one.
"""
import json
import os
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WRITE = "http://" + os.environ["WRITE_API_ADDR"]
SEARCH = "http://" + os.environ["SEARCH_API_ADDR"]
XSS_NAME = "<img src=x onerror=alert(1)> Zqxwv"
ORDERS = 240
CUSTOMERS = 12


def token(*roles, subject="browser-tests"):
    args = [os.environ["ORDER_ADMIN"], "token", "--subject", subject, "--ttl", "2h"]
    for role in roles:
        args += ["--role", role]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


STAFF = token("staff")


def call(method, url, body=None, bearer=STAFF):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": "Bearer " + bearer})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def search_api(query):
    return call("GET", SEARCH + "/search/orders?" + query)


def seed():
    """240 orders of 12 customers (one with an HTML name), several statuses,
    spread over six months, then reindexed so the read side has the back-dated times."""
    catalog = [("MUG-1", "Blue Coffee Mug", "12.50"), ("SHOE-2", "Red Running Shoes", "89.90"), ("SOCK-3", "Wool Socks", "9.99"),
               ("LAMP-4", "Desk Lamp", "45.00"), ("TENT-5", "Two-person Tent", "249.00"), ("BIKE-6", "City Bike", "1199.00")]
    names = [XSS_NAME, "Alice Smith", "Bob Jones", "Zoë Müller", "Chen Wei", "Dana Levi", "Emeka Obi", "Fatima Khan",
             "Gustav Berg", "Hana Sato", "Ivan Petrov", "Julia Rossi"]
    customers = []
    for i, name in enumerate(names):
        customers.append(call("POST", WRITE + "/customers", {"name": name, "email": f"c{i}.{time.time_ns()}@example.com", "country": "DE"})["id"])
    for i in range(ORDERS):
        lines = [catalog[(i + j) % len(catalog)] for j in range(1 + i % 3)]
        order = call("POST", WRITE + "/orders", {
            "customer_id": customers[i % CUSTOMERS], "currency": ["EUR", "USD", "GBP"][i % 3],
            "items": [{"sku": sku, "name": name, "quantity": 1 + (i + k) % 3, "unit_price": price} for k, (sku, name, price) in enumerate(lines)],
            "shipping_address": {"line1": "Main St 1", "city": ["Berlin", "Paris", "Boston", "London", "Rome"][i % 5],
                                 "postal_code": "10115", "country": ["DE", "FR", "US", "GB", "IT"][i % 5]},
        })
        if i % 3 != 0:
            call("POST", f"{WRITE}/orders/{order['id']}/pay", {"payment_reference": f"psp-{i}", "amount": order["total"]})
            if i % 3 == 2:
                call("POST", f"{WRITE}/orders/{order['id']}/ship", {"carrier": "DHL", "tracking_number": f"TRK{i:04d}"})
    subprocess.run([os.environ["PSQL"], os.environ["DATABASE_URL"], "-Xqc",
                    "UPDATE orders SET created_at = created_at - (abs(hashtext(id)) % 6) * interval '31 days', "
                    "updated_at = updated_at - (abs(hashtext(id)) % 6) * interval '31 days'"], check=True)
    subprocess.run([os.environ["ORDER_ADMIN"], "reindex"], check=True, capture_output=True)
    deadline = time.time() + 120
    while search_api("size=1")["total"] != ORDERS or len(search_api("size=1")["facets"]["created_month"]) < 3:
        if time.time() > deadline:
            raise AssertionError("the seeded orders did not become searchable")
        time.sleep(0.5)


class StaffPageTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        seed()
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US"]:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        cls.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        cls.console = []

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()

    def tearDown(self):
        # Collected per test so a failure names the test that logged it.
        self.console.extend((self.id(), entry) for entry in self.driver.get_log("browser"))

    # ---- helpers -----------------------------------------------------------

    def wait(self, condition, timeout=15, message=""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda d: condition(), message)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def open_signed_in(self, path="/"):
        self.driver.get(SEARCH + "/")
        self.js("sessionStorage.setItem('order-search-token', arguments[0])", STAFF)
        self.driver.get(SEARCH + path)
        self.wait_results()

    def wait_results(self):
        """Until the current search has answered (no loading state)."""
        self.wait(lambda: self.js("return document.getElementById('results').getAttribute('aria-busy')") == "false"
                  and self.js("return document.getElementById('summary').textContent") != "")

    def visible(self, element_id):
        return self.driver.find_element(By.ID, element_id).is_displayed()

    def hit_ids(self):
        return self.js("return [...document.querySelectorAll('#hits .hit')].map(h => h.dataset.id)")

    def facet_counts(self, facet):
        return self.js("""return Object.fromEntries([...document.querySelectorAll(`[data-facet="${arguments[0]}"] label`)]
            .map(l => [l.querySelector('input').dataset.value, Number(l.querySelector('.count').textContent)]))""", facet)

    def summary_total(self):
        """The total the summary line shows, or None while a search is in flight (the page empties it then)."""
        text = self.driver.find_element(By.ID, "summary").text
        count = text.split(" ")[0].replace(",", "").rstrip("+")
        return int(count) if count.isdigit() else None

    def screenshot(self, name):
        os.makedirs(os.environ["SCREENSHOTS"], exist_ok=True)
        self.driver.save_screenshot(os.path.join(os.environ["SCREENSHOTS"], name + ".png"))

    # ---- sign-in -------------------------------------------------------------

    def test_01_sign_in_and_expired_session(self):
        self.driver.get(SEARCH + "/")
        self.js("sessionStorage.clear()")
        self.driver.get(SEARCH + "/")
        self.wait(lambda: self.visible("signin"))
        self.assertFalse(self.visible("app"))
        # A refused token (401) sends the user back to sign-in with a message.
        self.driver.find_element(By.ID, "token").send_keys("not-a-valid-token")
        self.driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
        self.wait(lambda: self.visible("signin") and "expired" in self.driver.find_element(By.ID, "signin-message").text)
        self.assertIsNone(self.js("return sessionStorage.getItem('order-search-token')"))
        self.driver.find_element(By.ID, "token").send_keys("Bearer " + STAFF)
        self.driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
        self.wait_results()
        self.assertEqual(self.summary_total(), ORDERS)
        self.screenshot("desktop-signed-in")
        self.driver.find_element(By.ID, "signout").click()
        self.wait(lambda: self.visible("signin"))
        self.assertIsNone(self.js("return sessionStorage.getItem('order-search-token')"))

    # ---- search ------------------------------------------------------------

    def test_02_search_as_you_type_shows_html_names_as_text(self):
        self.open_signed_in()
        self.js("window.__alerted = false; window.alert = () => { window.__alerted = true }")
        box = self.driver.find_element(By.ID, "q")
        for ch in "Zqxw":
            box.send_keys(ch)
            time.sleep(0.05)
        expected = search_api("q=Zqxw&size=1")["total"]
        self.wait(lambda: "q=Zqxw" in self.driver.current_url and self.summary_total() == expected)
        first = self.driver.find_element(By.CSS_SELECTOR, "#hits .hit .who")
        self.assertIn(XSS_NAME, first.text)
        self.assertEqual(self.js("return document.querySelectorAll('#hits img, #panel img').length"), 0)
        marks = [m.text for m in self.driver.find_elements(By.CSS_SELECTOR, "#hits .hit .who mark")]
        self.assertTrue(any(m.startswith("Zqxw") for m in marks), marks)
        self.assertFalse(self.js("return window.__alerted"))
        self.screenshot("desktop-xss-name-as-text")

    def test_03_a_stale_answer_never_overwrites_a_newer_one(self):
        self.open_signed_in()
        box = self.driver.find_element(By.ID, "q")
        # Quick typing and deleting: many searches in flight, only the last may show.
        for text in ["mug", "wool", "lamp", "tent"]:
            box.clear()
            box.send_keys(text)
            box.send_keys(Keys.ENTER)
        expected = search_api("q=tent&size=25")
        self.wait(lambda: "q=tent" in self.driver.current_url)
        self.wait_results()
        time.sleep(1.0)  # any late answer of an older search would land now
        self.assertEqual(self.summary_total(), expected["total"])
        self.assertEqual(self.hit_ids()[:5], [h["id"] for h in expected["hits"][:5]])

    def test_04_multi_select_facet_counts_follow_the_api(self):
        self.open_signed_in("/?country=DE")
        for value in ["paid", "shipped"]:
            self.driver.find_element(By.CSS_SELECTOR, f'[data-facet="status"] input[data-value="{value}"]').click()
            self.wait(lambda: f"status={value}" in self.driver.current_url)
            self.wait_results()
        expected = search_api("country=DE&status=paid&status=shipped&size=1")
        self.assertEqual(self.summary_total(), expected["total"])
        for facet in ["status", "country", "currency"]:
            shown = {k: v for k, v in self.facet_counts(facet).items() if v > 0}
            self.assertEqual(shown, {b["value"]: b["count"] for b in expected["facets"][facet]}, facet)
        # Multi-select: the status facet still offers the unselected statuses with their counts.
        self.assertIn("pending", self.facet_counts("status"))
        checked = self.js("return [...document.querySelectorAll('[data-facet=\"status\"] input:checked')].map(i => i.dataset.value)")
        self.assertEqual(sorted(checked), ["paid", "shipped"])

    def test_05_endless_scroll_reaches_the_last_order_exactly_once(self):
        self.open_signed_in("/?sort=-total")
        expected_total = search_api("size=1")["total"]
        deadline = time.time() + 60
        while not self.visible("end"):
            self.js("window.scrollTo(0, document.body.scrollHeight)")
            time.sleep(0.2)
            self.assertLess(time.time(), deadline, "the end of the results was never reached")
        ids = self.hit_ids()
        self.assertEqual(len(ids), expected_total)
        self.assertEqual(len(set(ids)), len(ids))
        totals = self.js("return [...document.querySelectorAll('#hits .hit .money')].map(m => parseFloat(m.textContent))")
        self.assertEqual(totals, sorted(totals, reverse=True))

    def test_06_back_and_forward_restore_the_search(self):
        self.open_signed_in()
        box = self.driver.find_element(By.ID, "q")
        box.send_keys("shoes", Keys.ENTER)
        self.wait(lambda: "q=shoes" in self.driver.current_url)
        self.wait_results()
        self.driver.find_element(By.CSS_SELECTOR, '[data-facet="status"] input[data-value="paid"]').click()
        self.wait(lambda: "status=paid" in self.driver.current_url)
        self.wait_results()
        with_status = self.summary_total()
        self.driver.back()
        self.wait(lambda: "status=paid" not in self.driver.current_url and "q=shoes" in self.driver.current_url)
        self.wait(lambda: self.summary_total() == search_api("q=shoes&size=1")["total"])
        self.assertEqual(self.driver.find_element(By.ID, "q").get_attribute("value"), "shoes")
        self.assertFalse(self.driver.find_element(By.CSS_SELECTOR, '[data-facet="status"] input[data-value="paid"]').is_selected())
        self.driver.forward()
        self.wait(lambda: "status=paid" in self.driver.current_url)
        self.wait(lambda: self.summary_total() == with_status)
        self.assertTrue(self.driver.find_element(By.CSS_SELECTOR, '[data-facet="status"] input[data-value="paid"]').is_selected())

    def test_07_keyboard_opens_and_closes_the_order_panel(self):
        self.open_signed_in()
        self.driver.find_element(By.TAG_NAME, "body").send_keys("/")
        self.assertEqual(self.js("return document.activeElement.id"), "q")
        first = self.driver.find_element(By.CSS_SELECTOR, "#hits .hit")
        order_id = first.get_attribute("data-id")
        self.js("arguments[0].focus()", first)
        first.send_keys(Keys.ENTER)
        self.wait(lambda: self.visible("panel") and self.driver.find_elements(By.CSS_SELECTOR, "#panel-body table tbody tr"))
        document = call("GET", f"{SEARCH}/search/orders/{order_id}")
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#panel-body table tbody tr")
        self.assertEqual(len(rows), document["item_count"])
        body = self.driver.find_element(By.ID, "panel-body").text.lower()
        for text in [document["customer"]["name"], document["customer"]["email"], document["status"], document["total"], document["shipping_city"]]:
            self.assertIn(text.lower(), body)
        self.assertIn("order=" + order_id, self.driver.current_url)
        self.screenshot("desktop-order-panel")
        self.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        self.wait(lambda: not self.visible("panel"))
        self.assertEqual(self.js("return document.activeElement.dataset.id"), order_id)
        self.assertNotIn("order=", self.driver.current_url)

    def test_08_chart_draws_the_month_facet(self):
        self.open_signed_in("/?status=paid")
        months = search_api("status=paid&size=1")["facets"]["created_month"]
        bars = self.js("return [...document.querySelectorAll('#chart svg rect')].map(r => [r.dataset.month, Number(r.dataset.count)])")
        self.assertEqual(bars, [[m["value"], m["count"]] for m in months])
        heights = self.js("return [...document.querySelectorAll('#chart svg rect')].map(r => Number(r.getAttribute('height')))")
        tallest = max(range(len(months)), key=lambda i: months[i]["count"])
        self.assertEqual(heights[tallest], max(heights))

    def test_09_empty_and_error_states(self):
        self.open_signed_in("/?q=qqqqzzzzxxxxwwww")
        status = self.driver.find_element(By.ID, "status")
        self.assertTrue(status.is_displayed())
        self.assertIn("No orders match", status.text)
        self.driver.get(SEARCH + "/?total_min=not-a-number")
        self.wait(lambda: "failed" in self.driver.find_element(By.ID, "status").text)
        self.assertIn("error", self.driver.find_element(By.ID, "status").get_attribute("class"))

    def test_10_usable_at_375_px(self):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True})
        try:
            self.open_signed_in("/?q=mug")
            self.assertLessEqual(self.js("return document.documentElement.scrollWidth"), 375)
            search = self.driver.find_element(By.ID, "q")
            self.assertTrue(search.is_displayed())
            self.assertLessEqual(search.rect["x"] + search.rect["width"], 375)
            self.assertTrue(self.driver.find_element(By.CSS_SELECTOR, "#hits .hit").is_displayed())
            self.screenshot("phone-375")
            self.driver.find_element(By.CSS_SELECTOR, "#filters-box summary").click()
            self.assertTrue(self.driver.find_element(By.CSS_SELECTOR, '[data-facet="status"]').is_displayed())
            self.assertLessEqual(self.js("return document.documentElement.scrollWidth"), 375)
            self.screenshot("phone-375-filters")
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def test_11_no_console_errors(self):
        self.open_signed_in("/?q=lamp")
        self.tearDown()
        # Network errors the tests provoke on purpose (401, 400) are logged by the
        # browser itself; anything else at SEVERE level is a page error.
        errors = [(test, e["message"]) for test, e in self.console
                  if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
