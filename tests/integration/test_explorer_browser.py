"""The explorer in a real browser (issue 10): headless Debian chromium driven by selenium
against a 4-node devnet. The page loads and shows every validator; the height it shows
rises while txs are submitted; clicking a block shows its txs with hidden amounts; the
tx page shows the certificate signers; and no amount appears anywhere on any page, in
any formatting. Takes a screenshot of the overview and of a block; with
``VEIL_SCREENSHOTS=docs`` they replace docs/img/explorer.png and
docs/img/explorer-block.png (the README's), otherwise they go to the test's temporary
directory, so that ``make test`` leaves the work tree as it found it.

Never skipped: without chromium and chromedriver the test fails and says which Debian
packages to install (``make test`` installs them itself when it runs as root).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from client.sdk import Client
from client.wallet_file import WalletDir
from ledger.build import OutputPlan, build_issue, build_register_account
from ledger.loan_build import LoanKeys, build_originate
from ledger.tx import LoanTerms
from tests.integration.test_devnet import ROOT, devnet, free_base_port

ISSUED = 8_314_159_267
BANK_FUNDS = 4_669_201_609
PRINCIPAL = 1_414_213_562
PAYMENTS = (5_271_009_383, 61_803_398, 2_718_281)
AMOUNTS = (
    ISSUED,
    BANK_FUNDS,
    ISSUED + BANK_FUNDS,
    PRINCIPAL,
    BANK_FUNDS - PRINCIPAL,
    *PAYMENTS,
    ISSUED - sum(PAYMENTS),
    sum(PAYMENTS),
)
"""Distinctive amounts and their sums: none may appear on any page of the explorer."""
TERMS = LoanTerms(rate_bps=725, period_blocks=10, maturity_height=900, purpose="inventory")
DEPS_MESSAGE = (
    "the browser test needs Debian's chromium and chromium-driver packages: "
    "`apt-get install chromium chromium-driver` (make test installs them when run as root)"
)
DOCS_IMAGES = ROOT / "docs" / "img"
SCREENSHOT = "explorer.png"
BLOCK_SCREENSHOT = "explorer-block.png"
WAIT_S = 90.0
"""Generous: on a loaded 2-core machine a status request can take seconds."""
T = TypeVar("T")


def screenshot_dir(tmp_path: Path) -> Path:
    """docs/img with ``VEIL_SCREENSHOTS=docs`` (to refresh the README's images), else a
    directory of the test's own: a test run must not rewrite tracked files."""
    directory = DOCS_IMAGES if os.environ.get("VEIL_SCREENSHOTS") == "docs" else tmp_path / "img"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def browser_binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(DEPS_MESSAGE)
    return browser, driver


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    binary, driver_path = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--window-size=1360,900",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium never tries to download one.
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Net:
    root: Path
    urls: list[str]
    client: Client
    chain_id: bytes
    asset_id: bytes
    auditor_key: bytes
    firm_x: WalletDir
    firm_y: WalletDir
    loan_id: bytes
    """Bank 0's loan of ``PRINCIPAL`` to firm Y."""


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    root = tmp_path / "devnet"
    base = free_base_port()
    started = devnet("up", "--dir", str(root), "--base-port", str(base), "--no-demo")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        urls = [f"http://127.0.0.1:{base + i}" for i in range(4)]
        assert all(f"{url}/explorer/" in started.stdout for url in urls), started.stdout
        yield _funded(root, urls)
    finally:
        stopped = devnet("down", "--dir", str(root), "--purge")
        assert stopped.returncode == 0, stopped.stderr


def _funded(root: Path, urls: list[str]) -> Net:
    """Bank 0 registers firms X and Y, issues ``ISSUED`` to X and ``BANK_FUNDS`` to itself,
    and lends ``PRINCIPAL`` of it to Y."""
    client = Client(urls[0], timeout_s=30)
    chain = client.chain()
    bank = WalletDir.open(root / "banks/bank0", read_state=False)
    x = WalletDir.open(root / "clients/firm-x", read_state=False)
    y = WalletDir.open(root / "clients/firm-y", read_state=False)
    asset = next(a for a in chain.assets if a.issuer == bank.public_key)
    nonce = client.account(bank.public_key).last_nonce
    for firm in (x, y):
        nonce += 1
        pop = firm.wallet.proof_of_possession(chain.chain_id, bank.public_key)
        registration = build_register_account(
            bank.wallet.identity,
            chain.chain_id,
            firm.public_key,
            firm.memo_public_key,
            proof_of_possession=pop,
            nonce=nonce,
        )
        _commit(client, registration.encode(), registration.tx_id)
    issue = build_issue(
        bank.wallet.identity,
        chain.chain_id,
        asset.id,
        [
            OutputPlan(x.public_key, x.memo_public_key, ISSUED),
            OutputPlan(bank.public_key, bank.memo_public_key, BANK_FUNDS),
        ],
        chain.auditor_memo_public_key,
        nonce=nonce + 1,
    )
    _commit(client, issue.encode(), issue.tx_id)
    loan = build_originate(
        bank.wallet.identity,
        y.wallet.identity,
        chain.chain_id,
        asset=asset.id,
        amount=PRINCIPAL,
        terms=TERMS,
        inputs=[(issue.output_ids()[1], issue.openings[1])],
        keys=LoanKeys(bank.memo_public_key, y.memo_public_key, chain.auditor_memo_public_key),
        consent_nonce=client.account(y.public_key).last_nonce + 1,
    )
    _commit(client, loan.built.encode(), loan.built.tx_id)
    return Net(
        root,
        urls,
        client,
        chain.chain_id,
        asset.id,
        chain.auditor_memo_public_key,
        WalletDir.open(root / "clients/firm-x"),
        y,
        loan.built.tx_id,
    )


def _commit(client: Client, raw: bytes, tx_id: bytes) -> int:
    client.submit(raw)
    status = client.wait_for_commit(tx_id, 60)
    assert status.status == "committed" and status.height is not None, status
    return status.height


def pay(net: Net, amount: int) -> tuple[bytes, int]:
    """Firm X pays firm Y ``amount``; the tx id and its height."""
    net.firm_x.sync(net.client)
    built = net.firm_x.wallet.pay(
        net.chain_id,
        net.asset_id,
        recipient=net.firm_y.public_key,
        recipient_memo_key=net.firm_y.memo_public_key,
        amount=amount,
        auditor_memo_key=net.auditor_key,
    )
    return built.tx_id, _commit(net.client, built.encode(), built.tx_id)


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except (NoSuchElementException, StaleElementReferenceException, ValueError):
            value = None  # not rendered yet, or re-rendered under us: ask again
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


def shown_height(driver: WebDriver) -> int | None:
    text = driver.find_element(By.ID, "stat-height").text.replace(",", "")
    return int(text) if text.isdigit() else None


def amount_pattern(amount: int) -> re.Pattern[str]:
    """The amount's digits with any grouping (``5,271,009,383``, ``5 271 009 383``, …)."""
    return re.compile(r"(?<!\d)" + r"[,.\s'_\u202f\u00a0]?".join(str(amount)) + r"(?!\d)")


def assert_no_amount(driver: WebDriver, where: str) -> None:
    page = driver.page_source
    text = driver.find_element(By.TAG_NAME, "body").text
    assert page and text, where
    for amount in AMOUNTS:
        pattern = amount_pattern(amount)
        for name, haystack in (("source", page), ("visible text", text)):
            assert not pattern.search(haystack), f"{amount} in the {name} of {where}"
        assert amount.to_bytes(8, "little").hex() not in page, where


def assert_amount_check_can_fail() -> None:
    """Guard: the scan finds an amount in the formats a page could use."""
    for shown in ("5271009383", "5,271,009,383", "5 271 009 383", "5.271.009.383"):
        assert amount_pattern(PAYMENTS[0]).search(f"<td>{shown}</td>"), shown
    assert not amount_pattern(PAYMENTS[0]).search("152710093830")


def severe_console_errors(driver: WebDriver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.slow
def test_the_explorer_in_a_browser(net: Net, browser: WebDriver, tmp_path: Path) -> None:
    assert_amount_check_can_fail()
    driver = browser
    driver.get(f"{net.urls[0]}/explorer/")
    assert driver.title == "Veil Explorer"

    # The network: all four validators with a height, node 0 primary and "this node".
    def nodes_with_height() -> list[str] | None:
        cards = driver.find_elements(By.CSS_SELECTOR, "#nodes .node")
        heights = [c.find_elements(By.CSS_SELECTOR, ".node-height") for c in cards]
        return [h[0].text for h in heights] if len(cards) == 4 and all(heights) else None

    try:
        wait_for("four validators with their heights", nodes_with_height)
    except AssertionError as exc:
        shown = driver.find_element(By.ID, "nodes").text
        raise AssertionError(f"{exc}; the page shows: {shown!r}") from None
    first = driver.find_element(By.CSS_SELECTOR, '#nodes .node[data-index="0"]')
    assert "primary" in first.text and "this node" in first.text
    assert wait_for(
        "the live event stream",
        lambda: driver.find_element(By.ID, "live").get_attribute("data-state") == "live",
    )

    # The height shown rises with each committed payment, live.
    seen = [wait_for("a height", lambda: shown_height(driver))]
    paid: list[tuple[bytes, int]] = []
    for amount in PAYMENTS:
        tx_id, height = pay(net, amount)
        paid.append((tx_id, height))
        seen.append(
            wait_for(
                f"height {height} on the page",
                lambda h=height: (s := shown_height(driver)) is not None and s >= h and s,
            )
        )
    assert seen == sorted(set(seen)), f"the height shown did not rise: {seen}"
    last_tx, last_height = paid[-1]
    row = wait_for(
        f"block {last_height} in the latest blocks",
        lambda: driver.find_elements(
            By.CSS_SELECTOR, f'#latest-blocks tr[data-height="{last_height}"] a'
        ),
    )
    time.sleep(0.5)  # let the row's highlight fade in for the screenshot
    images = screenshot_dir(tmp_path)
    assert driver.save_screenshot(str(images / SCREENSHOT))
    assert_no_amount(driver, "the overview")

    # Clicking the block shows its txs: the payment, amounts hidden.
    row[0].click()
    card = wait_for(
        "the payment on the block page",
        lambda: driver.find_elements(By.CSS_SELECTOR, f'#block-txs .tx[data-tx="{last_tx.hex()}"]'),
    )[0]
    assert driver.current_url.endswith(f"#/block/{last_height}")
    assert "Transfer" in card.text
    assert card.text.count("amount hidden") == len(card.find_elements(By.CSS_SELECTOR, ".io-item"))
    assert "range proofs" in card.text and "USD.B0" in card.text
    assert driver.save_screenshot(str(images / BLOCK_SCREENSHOT))
    assert_no_amount(driver, f"block {last_height}")

    # The tx page: committed, with the certificate's signers by name.
    card.find_element(By.CSS_SELECTOR, f'a[href="#/tx/{last_tx.hex()}"]').click()
    status = wait_for("the tx status", lambda: driver.find_elements(By.ID, "tx-status"))[0]
    assert status.text == "committed"
    signers = driver.find_elements(By.CSS_SELECTOR, ".signers .badge")
    assert len(signers) >= 3 and all(s.text.startswith("bank") for s in signers)
    assert_no_amount(driver, "the tx page")

    # The loan: its origination on its block page with the public terms, and the loan
    # page from /v1/loans/{id}, principal and outstanding as hidden amounts.
    loan_hex = net.loan_id.hex()
    loan_height = net.client.tx(net.loan_id).height
    driver.get(f"{net.urls[2]}/explorer/#/block/{loan_height}")
    loan_card = wait_for(
        "the loan's origination",
        lambda: driver.find_elements(By.CSS_SELECTOR, f'#block-txs .tx[data-tx="{loan_hex}"]'),
    )[0]
    for shown in (
        "Loan originated",
        "7.25 % per period (725 bps)",
        "every 10 blocks",
        "block 900",
        "inventory",
        "amount hidden",
    ):
        assert shown in loan_card.text, (shown, loan_card.text)
    assert_no_amount(driver, "the loan's block")
    loan_card.find_element(By.CSS_SELECTOR, f'a[href="#/loan/{loan_hex}"]').click()
    loan_status = wait_for("the loan page", lambda: driver.find_elements(By.ID, "loan-status"))
    assert loan_status[0].text == "active"
    page = driver.find_element(By.ID, "view").text
    assert page.count("amount hidden") == 2 and "inventory" in page
    assert_no_amount(driver, "the loan page")

    # Every other block and the first payment's tx page, scanned too.
    for height in range(1, last_height + 1):
        driver.get(f"{net.urls[1]}/explorer/#/block/{height}")
        wait_for(
            f"block {height}",
            lambda h=height: driver.find_element(By.ID, "block-title").text == f"Block #{h}",
        )
        assert_no_amount(driver, f"node 1's block {height}")
    errors = severe_console_errors(driver)
    assert not errors, errors


def test_a_missing_browser_fails_with_the_package_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a silent skip: without chromium the test fails and names both packages."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception) as failed:
        browser_binaries()
    assert "chromium" in str(failed.value) and "chromium-driver" in str(failed.value)
