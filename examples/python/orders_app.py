"""A Flask "orders" service with no OpenTelemetry code and two classic performance bugs, for `routelens why`.

Run it the zero-code way (opentelemetry-distro configures the SDK from OTEL_* variables; the Flask and
SQLAlchemy instrumentations are picked up from the venv):

    OTEL_SERVICE_NAME=orders OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 \
      PORT=5060 opentelemetry-instrument python orders_app.py

The database is an in-memory SQLite made at start: ORDERS orders and ITEMS_PER_ORDER items each, the items
table without an index on order_id (a foreign key nobody indexed), so every query by order scans it.

Routes:
  GET /orders                   the first 30 orders with their items, through the ORM's lazy loading:
                                one SELECT of orders, then one SELECT of items per order (an N+1)
  GET /orders/<int:order_id>    one order with its items in two queries (selectinload: no N+1)
  GET /reports/top-skus         the ten best-selling SKUs: one heavy GROUP BY over every item (a slow statement)
  GET /healthz                  liveness
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from flask import Flask, abort, jsonify
from sqlalchemy import ForeignKey, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload
from sqlalchemy.pool import StaticPool
from werkzeug.serving import make_server

log = logging.getLogger("orders_app")

ORDERS = int(os.environ.get("ORDERS", "2000"))
ITEMS_PER_ORDER = int(os.environ.get("ITEMS_PER_ORDER", "20"))
LISTED = 30


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(40))
    # lazy="select" (the default): order.items runs one query the first time it is read. The order_by makes
    # SQLite find and sort every item of the order before the first row, so the query's time is in execute(),
    # which is all the DB span covers (rows fetched later count as the request's own time).
    items: Mapped[list["OrderItem"]] = relationship(back_populates="order", lazy="select", order_by="OrderItem.sku")


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    # no index=True: every lookup by order scans the table
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    sku: Mapped[str] = mapped_column(String(20))
    qty: Mapped[int]
    order: Mapped[Order] = relationship(back_populates="items")


def make_engine():
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(Order.__table__.insert(), [{"id": i, "customer": f"customer-{i % 97}"} for i in range(1, ORDERS + 1)])
        conn.execute(
            OrderItem.__table__.insert(),
            [
                {"order_id": o, "sku": f"sku-{(o * 7 + k) % 500}", "qty": 1 + (o + k) % 5}
                for o in range(1, ORDERS + 1)
                for k in range(ITEMS_PER_ORDER)
            ],
        )
    return engine


def create_app(engine) -> Flask:
    app = Flask(__name__)

    @app.get("/orders")
    def list_orders():
        with Session(engine) as session:
            orders = session.scalars(select(Order).order_by(Order.id).limit(LISTED)).all()
            return jsonify([{"id": o.id, "items": len(o.items)} for o in orders])

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int):
        with Session(engine) as session:
            order = session.scalars(select(Order).where(Order.id == order_id).options(selectinload(Order.items))).first()
            if order is None:
                abort(404, description=f"order {order_id} not found")
            return jsonify(id=order.id, customer=order.customer, items=[{"sku": i.sku, "qty": i.qty} for i in order.items])

    @app.get("/reports/top-skus")
    def top_skus():
        with Session(engine) as session:
            rows = session.execute(
                select(OrderItem.sku, func.sum(OrderItem.qty).label("sold"))
                .group_by(OrderItem.sku)
                .order_by(func.sum(OrderItem.qty).desc(), func.count(func.distinct(OrderItem.order_id)).desc())
                .limit(10)
            ).all()
            return jsonify([{"sku": r.sku, "sold": r.sold} for r in rows])

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app


def _raise_system_exit(signum, _frame):
    raise SystemExit(0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    port = int(os.environ.get("PORT", "5060"))
    engine = make_engine()
    app = create_app(engine)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGINT, _raise_system_exit)
    server = make_server("127.0.0.1", port, app, threaded=True)
    log.info("listening on http://127.0.0.1:%d (%d orders, %d items)", server.server_port, ORDERS, ORDERS * ITEMS_PER_ORDER)
    try:
        server.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.server_close()
        # opentelemetry-instrument's SDK flushes its queued spans at exit (atexit)
        log.info("stopped")


if __name__ == "__main__":
    main()
