-- Which checkout session each checkout's first invoice belongs to, as checkout.session.completed
-- tells (its `invoice`): the payment of that invoice names the session
-- (payments.stripe_checkout_session_id), whichever of the two events arrives first.
CREATE TABLE checkout_invoices (
  invoice_id TEXT PRIMARY KEY,
  checkout_session_id TEXT NOT NULL
);
