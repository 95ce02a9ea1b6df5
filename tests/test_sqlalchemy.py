"""The SQLAlchemy dialect (loot/sqlalchemy.py) against a real cluster: Core, an ORM round trip with
rollback, the schema claim from MetaData, and create_all refused with a pointer to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, String, create_engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import loot.dbapi
from loot import Key
from loot.sqlalchemy import schema_claim

pytestmark = pytest.mark.cluster


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"), index=True)


POLICY = "".join(f"INSERT INTO _filters VALUES ('{table}', 'all', 'true');"
                 f"INSERT INTO _rules VALUES ('{table}', 'write', 'all', 'true');" for table in ("authors", "books"))


@pytest.fixture
def engine(cluster, key: Key, tmp_path: Path, request: pytest.FixtureRequest):
    key.save(tmp_path / "key.json")
    (tmp_path / "schema.sql").write_text(schema_claim(Base.metadata, POLICY))
    engine = create_engine(f"loot://{cluster.address}/orm?tenant={request.node.name}"
                           f"&key={tmp_path / 'key.json'}&schema={tmp_path / 'schema.sql'}")
    yield engine
    engine.dispose()


def test_orm_round_trip_with_rollback(engine) -> None:
    with Session(engine) as session:
        ann = Author(name="Ann")
        session.add_all([ann, Author(name="Bob")])
        session.flush()
        session.add(Book(title="First", author_id=ann.id))
        session.commit()
        book = session.scalars(select(Book).where(Book.title == "First")).one()
        book.title = "First, revised"
        session.delete(session.scalars(select(Author).where(Author.name == "Bob")).one())
        session.commit()
        session.add(Author(name="Carol"))
        session.flush()
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Author)) == 1
        assert session.scalars(select(Book.title)).all() == ["First, revised"]
        session.add(Author(name="Ann"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_core_and_create_all_refused(engine) -> None:
    with engine.begin() as connection:
        connection.execute(Author.__table__.insert(), [{"name": "Dee"}, {"name": "Eve"}])
    with engine.connect() as connection:
        assert connection.execute(select(Author.name).order_by(Author.name)).scalars().all() == ["Dee", "Eve"]
    with pytest.raises(loot.dbapi.NotSupportedError, match="schema_claim"):
        Base.metadata.create_all(engine)
    with pytest.raises(DBAPIError, match="schema_claim"):
        Base.metadata.create_all(engine, checkfirst=False)


def test_schema_claim_text() -> None:
    claim = schema_claim(Base.metadata)
    assert claim.index("CREATE TABLE authors") < claim.index("CREATE TABLE books")
    assert "CREATE INDEX ix_books_author_id ON books (author_id)" in claim
