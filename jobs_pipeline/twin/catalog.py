"""The six job types: durations, mix, failure rates, error messages and metadata shapes.

Durations are log-uniform inside the vendor doc's "typical" range (short jobs are common, long
ones rare but present), and 1 % of jobs are slow-tail stragglers taking 2-10x the range's
maximum: the jobs that sit IN_PROGRESS long enough to fall deep in the createdAt order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SLOW_TAIL_PROBABILITY = 0.01
SLOW_TAIL_FACTORS = (2.0, 10.0)
# An ERROR job fails after this fraction (uniform) of the duration it would have had.
FAILURE_POINT = (0.05, 1.0)
# Share of metadata keys dropped at random, and of jobs with no metadata at all.
KEY_DROP_PROBABILITY = 0.08
NO_METADATA_PROBABILITY = 0.06
# Share of jobs that never carry a `progress` field.
NO_PROGRESS_PROBABILITY = 0.10

Metadata = dict[str, Any]


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _log_uniform_mean(low: float, high: float) -> float:
    return (high - low) / math.log(high / low)


_DOC_STEMS = (
    "rapport-annuel",
    "contrat-cadre",
    "facture",
    "compte-rendu",
    "presentation",
    "notes-reunion",
    "budget",
    "cahier-des-charges",
    "procedure-qualite",
    "audit-securite",
    "politique-rh",
    "offre-commerciale",
)
_DOC_FORMATS = (
    ("pdf", "application/pdf"),
    ("pdf", "application/pdf"),
    ("pdf", "application/pdf"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("html", "text/html"),
    ("txt", "text/plain"),
)
FOLDER_NAMES = (
    "Knowledge Base",
    "Documentation",
    "Juridique",
    "Ressources Humaines",
    "Support Client",
    "Produit",
    "Finance",
    "Marketing",
    "Archives 2023",
    "Qualité",
    "Direction",
    "R&D",
)


def _document_metadata(rng: random.Random) -> Metadata:
    extension, mime = rng.choice(_DOC_FORMATS)
    return {
        "fileName": f"{rng.choice(_DOC_STEMS)}-{rng.randint(2019, 2026)}.{extension}",
        "fileSize": int(log_uniform(rng, 8_000, 60_000_000)),
        "mimeType": mime,
        "pageCount": rng.randint(1, 400),
        "extractionMethod": rng.choice(("ODIN", "ODIN", "OCR", "NATIVE")),
    }


def _embedding_metadata(rng: random.Random) -> Metadata:
    files = rng.randint(1, 200)
    return {
        "folderName": rng.choice(FOLDER_NAMES),
        "filesProcessed": files,
        "totalChunks": files * rng.randint(5, 80),
        "chunkSize": rng.choice((256, 500, 512, 1000)),
        "model": rng.choice(("text-embedding-ada-002", "text-embedding-3-large", "bge-m3")),
    }


def _sync_metadata(rng: random.Random) -> Metadata:
    return {
        "folderName": rng.choice(FOLDER_NAMES),
        "provider": rng.choice(("SHAREPOINT", "SHAREPOINT", "GOOGLE_DRIVE", "ONEDRIVE", "DROPBOX")),
        "filesAdded": rng.randint(0, 40),
        "filesUpdated": rng.randint(0, 120),
        "filesDeleted": rng.randint(0, 10),
    }


def _import_metadata(rng: random.Random) -> Metadata:
    return {
        "folderName": rng.choice(FOLDER_NAMES),
        "source": rng.choice(("ZIP", "URL_LIST", "S3", "UPLOAD")),
        "fileCount": rng.randint(2, 2000),
        "totalSize": int(log_uniform(rng, 100_000, 5_000_000_000)),
    }


def _transcription_metadata(rng: random.Random) -> Metadata:
    return {
        "fileName": f"{rng.choice(('reunion', 'interview', 'webinar', 'appel-client'))}-{rng.randint(1, 999)}.mp3",
        "durationSeconds": rng.randint(15, 5400),
        "language": rng.choice(("fr", "fr", "fr", "en", "de", "es")),
        "model": rng.choice(("whisper-large-v3", "whisper-medium")),
    }


def _generation_metadata(rng: random.Random) -> Metadata:
    return {
        "kind": rng.choice(("SUMMARY", "SUMMARY", "QUESTIONS", "TRANSLATION", "REPORT")),
        "model": rng.choice(("gpt-4o", "gpt-4o-mini", "mistral-large", "claude-3-5-sonnet")),
        "maxTokens": rng.choice((512, 1024, 2048, 4096)),
    }


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    min_seconds: float
    max_seconds: float
    failure_rate: float
    # Share of the spontaneous (root) arrivals; follow-up embeddings come on top.
    root_weight: float
    # "document" (new or recent document), "folder" (small pool), "audio" (new audio document).
    target: str
    errors: tuple[str, ...]
    metadata: Callable[[random.Random], Metadata]
    # Keys that only appear once the job is DONE ("keys come and go").
    done_keys: Callable[[random.Random], Metadata] | None = None

    def mean_seconds(self) -> float:
        """Mean run time: log-uniform body, slow tail, and shorter runs of jobs that fail."""
        body = _log_uniform_mean(self.min_seconds, self.max_seconds)
        tail = self.max_seconds * _log_uniform_mean(*SLOW_TAIL_FACTORS)
        full = (1 - SLOW_TAIL_PROBABILITY) * body + SLOW_TAIL_PROBABILITY * tail
        failed_share = sum(FAILURE_POINT) / 2
        return full * (1 - self.failure_rate * (1 - failed_share))

    def draw_seconds(self, rng: random.Random) -> float:
        if rng.random() < SLOW_TAIL_PROBABILITY:
            return self.max_seconds * log_uniform(rng, *SLOW_TAIL_FACTORS)
        return log_uniform(rng, self.min_seconds, self.max_seconds)

    def draw_metadata(self, rng: random.Random) -> Metadata | None:
        if rng.random() < NO_METADATA_PROBABILITY:
            return None
        full = self.metadata(rng)
        return {key: value for key, value in full.items() if rng.random() >= KEY_DROP_PROBABILITY}


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind(
            "EXTRACTION",
            5,
            300,
            0.04,
            0.38,
            "document",
            (
                "Document is password protected",
                "Unsupported file format",
                "OCR engine timeout after 300s",
                "Corrupted PDF: xref table not found",
                "File not found in storage",
            ),
            _document_metadata,
        ),
        JobKind(
            "EMBEDDING",
            10,
            600,
            0.02,
            0.07,
            "folder",
            (
                "Embedding provider rate limit exceeded",
                "Vector store unavailable",
                "Chunk exceeds model context length",
            ),
            _embedding_metadata,
        ),
        JobKind(
            "SYNC",
            60,
            1800,
            0.06,
            0.06,
            "folder",
            (
                "SharePoint token expired",
                "Remote folder not found",
                "Permission denied on remote drive",
                "Sync aborted: quota exceeded",
            ),
            _sync_metadata,
            lambda rng: {"filesSkipped": rng.randint(0, 5)},
        ),
        JobKind(
            "IMPORT",
            30,
            900,
            0.05,
            0.04,
            "folder",
            (
                "Archive is corrupted",
                "Import source unreachable",
                "Too many files in archive (limit 5000)",
            ),
            _import_metadata,
            lambda rng: {"filesImported": rng.randint(1, 2000)},
        ),
        JobKind(
            "TRANSCRIPTION",
            10,
            300,
            0.03,
            0.12,
            "audio",
            (
                "Audio codec not supported",
                "Speech-to-text service unavailable",
                "Audio file is empty",
            ),
            _transcription_metadata,
            lambda rng: {"wordCount": rng.randint(50, 90_000)},
        ),
        JobKind(
            "GENERATION",
            5,
            120,
            0.02,
            0.33,
            "document",
            (
                "LLM provider returned 529 (overloaded)",
                "Content filtered by moderation",
                "Context window exceeded",
            ),
            _generation_metadata,
            lambda rng: {"tokensGenerated": rng.randint(50, 4000)},
        ),
    )
}

# After an EXTRACTION finishes DONE, this share of documents gets an EMBEDDING of the same target.
FOLLOW_UP_PROBABILITY = 0.55
FOLLOW_UP_DELAY_SECONDS = (0.2, 8.0)


def draw_progress_fractions(rng: random.Random, planned_ms: int) -> tuple[float, ...] | None:
    """Where in its run a job reports progress (fractions of the run), or None: no progress field."""
    if rng.random() < NO_PROGRESS_PROBABILITY:
        return None
    # Roughly one step every 5-20 s of run, between 2 and 20 steps.
    steps = max(2, min(20, int(planned_ms / 1000 / rng.uniform(5, 20))))
    return tuple(sorted([0.02 + 0.96 * rng.random() for _ in range(steps)]))


ROOT_TYPES: tuple[str, ...] = tuple(KINDS)
ROOT_CUMULATIVE_WEIGHTS: tuple[float, ...] = tuple(
    itertools.accumulate(kind.root_weight for kind in KINDS.values())
)


def follow_ups_per_root() -> float:
    extraction = KINDS["EXTRACTION"]
    return extraction.root_weight * (1 - extraction.failure_rate) * FOLLOW_UP_PROBABILITY


def mean_service_seconds() -> float:
    """Average run time of a job of the whole mix, follow-up embeddings included."""
    weighted = sum(kind.root_weight * kind.mean_seconds() for kind in KINDS.values())
    follow = follow_ups_per_root()
    return (weighted + follow * KINDS["EMBEDDING"].mean_seconds()) / (1 + follow)


def kind_of(job_type: str) -> JobKind:
    """The catalogue entry, or a neutral one for a type the catalogue does not know."""
    known = KINDS.get(job_type)
    if known is not None:
        return known
    return JobKind(job_type, 5, 300, 0.03, 0.0, "document", ("Internal error",), lambda rng: {})
