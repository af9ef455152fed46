"""The web panel end to end in headless Chromium against `paramant up`: a user signs up from the
outbox mail, computes codes from the shown secret (as an authenticator app would), logs in and
sees the key; the admin enrolls TOTP at the first sign-in, creates and revokes a key, requires
TOTP for the user, and the user's next login is blocked until they enroll again."""
import base64
import hashlib
import hmac
import re
import struct
import time
import urllib.request
from pathlib import Path

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

EMAIL = "browser-user@example.com"


def totp(secret: str, at: float) -> str:
    """RFC 6238, SHA-1, 6 digits, 30 s — what the panel's QR code says."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def newest_setup_link(dev, email: str, after: int = 0) -> str:
    outbox = Path(dev["admin_outbox"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mails = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        for mail in reversed(mails[after:]):
            text = mail.read_text()
            if f"To: {email}" in text:
                return re.search(r"(http://\S+/auth/setup/pst_[0-9a-f]+)", text).group(1)
        time.sleep(0.1)
    raise AssertionError(f"no setup mail to {email}")


def mail_count(dev) -> int:
    outbox = Path(dev["admin_outbox"])
    return len(list(outbox.glob("*.eml"))) if outbox.exists() else 0


def relay_accepts(dev, key: str) -> bool:
    request = urllib.request.Request(dev["relay_url"] + "/v2/check-key", headers={"X-Api-Key": key})
    with urllib.request.urlopen(request) as response:
        return b'"valid":true' in response.read()


def fill(driver, field_id: str, value: str):
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def navigate(driver, element):
    """Clicks `element` (a form's button or a link) and returns once the page it leads to has
    loaded. WebDriver's click can return before a form submission's navigation has begun (the
    browser schedules it), so checks made right after a bare click may still see the old page:
    its URL (the same for a form that redirects back), its session, or an action not yet done
    on the server. The old page's window gets a mark; every navigation makes a new window
    without it, so the wait ends only on the new page, fully loaded. While the document is being
    swapped, chromedriver may answer a query with a transient error: the wait asks again."""
    driver.execute_script("window.oldPage = true")
    element.click()
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return window.oldPage !== true && document.readyState === 'complete'")
    )


def enroll(driver, link: str, step: int = 0) -> tuple[str, str]:
    """Opens a setup link, reads the secret, confirms with a code; (secret, page text)."""
    driver.get(link)
    secret = driver.find_element(By.ID, "secret").text
    assert driver.find_element(By.CSS_SELECTOR, ".qr img").get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert len(driver.find_elements(By.CSS_SELECTOR, "li.backup-code")) == 10
    fill(driver, "code", totp(secret, time.time() + 30 * step))
    navigate(driver, driver.find_element(By.ID, "confirm"))
    assert driver.find_element(By.ID, "activated")
    return secret, driver.page_source


def login(driver, dev, secret: str, step: int):
    driver.get(dev["admin_url"] + "/login")
    fill(driver, "email", EMAIL)
    fill(driver, "code", totp(secret, time.time() + 30 * step))
    navigate(driver, driver.find_element(By.ID, "login"))


def test_user_and_admin_flows_in_a_browser(dev, browser, browser2):
    base = dev["admin_url"]
    # The user signs up and sets up TOTP from the mailed link.
    browser.get(base + "/signup")
    fill(browser, "email", EMAIL)
    navigate(browser, browser.find_element(By.ID, "signup"))
    assert browser.find_element(By.ID, "sent")
    secret, _ = enroll(browser, newest_setup_link(dev, EMAIL))
    key = browser.find_element(By.ID, "api-key").text
    assert key.startswith("pgp_") and relay_accepts(dev, key)
    navigate(browser, browser.find_element(By.ID, "to-account"))
    assert browser.find_element(By.ID, "email").text == EMAIL
    assert browser.find_element(By.ID, "key-masked").text.startswith(key[:8])

    # Log out, log in again with the next step's code, see the account and its key.
    navigate(browser, browser.find_element(By.ID, "logout"))
    login(browser, dev, secret, step=1)
    assert browser.current_url.endswith("/account"), browser.page_source
    assert browser.find_element(By.ID, "key-masked").text.startswith(key[:8])

    # The admin's first sign-in enrolls the admin authenticator after the token.
    admin = browser2
    admin.get(base + "/admin")
    fill(admin, "token", dev["admin_token"])
    navigate(admin, admin.find_element(By.ID, "enroll"))
    admin_secret = admin.find_element(By.ID, "secret").text
    fill(admin, "token", dev["admin_token"])
    fill(admin, "code", totp(admin_secret, time.time()))
    navigate(admin, admin.find_element(By.ID, "confirm"))
    assert admin.current_url.endswith("/admin/users"), admin.page_source
    assert EMAIL in admin.find_element(By.ID, "users").text

    # The admin creates a key on the relay, then revokes it.
    admin.get(base + "/admin/keys")
    fill(admin, "label", "from the browser")
    navigate(admin, admin.find_element(By.ID, "create-key"))
    new_key = admin.find_element(By.ID, "new-key").text
    new_hash = admin.find_element(By.ID, "new-key-hash").text
    assert relay_accepts(dev, new_key)
    admin.get(base + "/admin/keys")
    navigate(admin, admin.find_element(By.ID, f"revoke-{new_hash[:16]}"))
    assert admin.current_url.endswith("/admin/keys")
    assert not relay_accepts(dev, new_key)
    row = admin.find_element(By.CSS_SELECTOR, f"tr.key[data-hash='{new_hash}'] td.active")
    assert row.text == "false"

    # The admin requires TOTP for the user: the user's session ends and a setup mail goes out.
    mails_before = mail_count(dev)
    admin.get(base + "/admin/users")
    navigate(admin, admin.find_element(By.XPATH, f"//tr[td[@class='email' and text()='{EMAIL}']]//button[starts-with(@id,'require-')]"))
    assert admin.current_url.endswith("/admin/users"), admin.page_source
    browser.get(base + "/account")
    assert browser.current_url.endswith("/login"), "the session was revoked"

    # The next login is blocked until the user enrolls again.
    login(browser, dev, secret, step=1)
    assert "totp_not_activated" in browser.find_element(By.ID, "error").text
    link = newest_setup_link(dev, EMAIL, after=mails_before)
    new_secret, page = enroll(browser, link)
    assert new_secret != secret
    assert "keeps its API key" in page
    login(browser, dev, new_secret, step=1)
    assert browser.current_url.endswith("/account"), browser.page_source

    # The audit page shows the admin actions with verified inclusion proofs.
    admin.get(base + "/admin/audit")
    actions = [e.text for e in admin.find_elements(By.CSS_SELECTOR, "tr.event td.action")]
    for action in ("admin_key_created", "admin_key_revoked", "admin_totp_required_toggled"):
        assert action in actions
    assert len(admin.find_elements(By.CSS_SELECTOR, ".verified")) >= 3
    assert EMAIL not in admin.find_element(By.ID, "audit").text
