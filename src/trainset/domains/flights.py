"""Flight forecasts (seed 002): a site-day weather table -> features, site ids and threshold targets.

The task is "will the best flight from this launch site today exceed t km?" for eleven
thresholds, from weather forecasts at three hours, site characteristics and the date. Users
bring one row per (site, day); this module generates a realistic such table (so the workflow
runs without the real database) and frames any such table into a
:class:`~trainset.collection.Collection`. Splits go by contiguous date blocks: the old code split
at random per site, so the same day, and the same regional weather, was in train and validation.

Site-day table (one row per ``(site_id, date)``, any row order)

==========================  ==========  =================================================
column                      dtype       meaning
==========================  ==========  =================================================
site_id                     int or str  launch site id
date                        datetime    the day (strings in ISO form are accepted)
lat, lon                    float       site position, degrees
altitude                    float       launch altitude, m
``<feature>_h09|h12|h15``   float       weather forecast at 09, 12 and 15 h local time
score                       float       the day's best flight distance, km, >= 0 (0: none)
==========================  ==========  =================================================

Weather features of :func:`make_flight_table` (:data:`WEATHER_FEATURES`, units): wind u/v and
speed at 10 m, 850 and 700 hPa (m/s, u eastward, v northward), 10 m gust (m/s); temperature at
2 m, 850, 700 and 500 hPa and 2 m dew point (degC); lapse rate 850-500 hPa (K/km); relative
humidity at 2 m and 700 hPa (%); low, mid and high cloud cover (%); cloud base (m above
ground); boundary-layer height (m); mean sea-level pressure (hPa); precipitation (mm / 3 h);
CAPE (J/kg); short-wave radiation (W/m2). :func:`frame_flights` takes any feature set that is
present at all three hours.

The synthetic score follows a known monotone mechanism (suffixes are hours, ``x+ = max(x, 0)``)::

    L = 0.9 + 0.9 (boundary_layer_height_h15 - 1200) / 700 + 0.45 (lapse_rate_h12 - 6.8) / 0.8
        + 0.3 (shortwave_radiation_h12 - 550) / 250 + 0.15 (cloud_base_h12 - 1200) / 600
        - 0.9 (wind_speed_850hpa_h12 - 7)+ / 3 - 0.6 (wind_gust_10m_h15 - 13)+ / 5
        - 1.3 log1p(precipitation_h12 + precipitation_h15)
        + site quality (hidden, N(0, 0.5)) + 0.35 weekend + N(0, 0.6)
    score = 200 (1 - exp(-L / 3.6)) km if L > 0 else 0

So the score rises with boundary-layer height, lapse rate, sunshine, cloud base and weekends
(more pilots), falls with strong wind and rain, and about half the site-days (most winter days)
score 0. The site quality is what a site embedding can learn.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.rng import named_rng
from trainset.splits import Splits, make_splits

if TYPE_CHECKING:  # annotations only: the framing function imports xarray, so ingesting tables skips it
    import xarray as xr

logger = logging.getLogger(__name__)

HOURS = ("h09", "h12", "h15")
THRESHOLDS = tuple(range(0, 101, 10))
WEATHER_FEATURES = (
    "wind_u_10m", "wind_v_10m", "wind_speed_10m", "wind_gust_10m",
    "wind_u_850hpa", "wind_v_850hpa", "wind_speed_850hpa",
    "wind_u_700hpa", "wind_v_700hpa", "wind_speed_700hpa",
    "temp_2m", "dewpoint_2m", "temp_850hpa", "temp_700hpa", "temp_500hpa", "lapse_rate",
    "rel_humidity_2m", "rel_humidity_700hpa",
    "cloud_cover_low", "cloud_cover_mid", "cloud_cover_high", "cloud_base",
    "boundary_layer_height", "pressure_msl", "precipitation", "cape", "shortwave_radiation",
)
SITE_FEATURES = ("lat", "lon", "altitude")
DATE_FEATURES = ("weekend", "doy_sin", "doy_cos", "year")
_EPOCH = np.datetime64("1970-01-01", "D")
#: Latent daily weather factors: (name, day-to-day AR(1) coefficient).
_FACTORS = (("temp", 0.85), ("pressure", 0.8), ("moisture", 0.65), ("wind", 0.6),
            ("flow_u", 0.7), ("flow_v", 0.7), ("stability", 0.5))


def make_flight_table(n_sites: int = 200, years: int = 3, seed: int = 0, start: str = "2021-01-01") -> pd.DataFrame:
    """Generate a synthetic site-day table with seasonal, persistent weather and a true score.

    Weather comes from seven latent daily factors per site, each an AR(1) in time mixing a
    regional series shared by all sites with a local one, so weather persists for days and
    sites share a day's weather, as real weather does. Features at each hour are physical functions of
    the factors, the day of year, the hour's heating and the site's altitude, plus noise. The
    score follows the monotone mechanism in the module docstring.

    Parameters
    ----------
    n_sites, years : int
        Table size: ``n_sites * years * 365`` rows (200 x 3 gives 219k; 822 x 3 about 900k).
    seed : int
        Root seed; sites, weather and score noise come from ``named_rng(seed, "flights", ...)``.
    start : str
        First date.

    Returns
    -------
    pandas.DataFrame
        The module's schema, rows ordered by (date, site_id); weather columns float32 in
        hour-major order (every feature at h09, then h12, then h15).
    """
    if n_sites < 1 or years < 1:
        raise TrainsetError(f"make_flight_table: n_sites and years must be >= 1; got {n_sites}, {years}")
    started = time.perf_counter()
    n_days = 365 * years
    dates = pd.date_range(start, periods=n_days, freq="D")
    site_rng, weather_rng, score_rng = (named_rng(seed, "flights", part) for part in ("sites", "weather", "score"))
    site_id = np.sort(site_rng.choice(np.arange(100, 100_000), n_sites, replace=False)).astype(np.int64)
    lat, lon = site_rng.uniform(43.5, 48.0, n_sites), site_rng.uniform(5.0, 16.0, n_sites)
    altitude = np.round(np.minimum(250 + site_rng.gamma(2.0, 450.0, n_sites), 3000.0))
    quality = site_rng.normal(0.0, 0.5, n_sites)
    blh_offset, exposure = site_rng.normal(0.0, 120.0, n_sites), site_rng.uniform(0.8, 1.3, n_sites)

    z = _factors(weather_rng, n_days, n_sites)  # [days, sites, factor]
    doy = dates.day_of_year.to_numpy()
    season = np.cos(2 * np.pi * (doy - 196) / 365.25)[:, None]  # +1 mid-July, -1 mid-January
    weather = _weather(weather_rng, z, season, altitude, blh_offset, exposure)

    weekend = (dates.day_of_week.to_numpy() >= 5)[:, None]
    score = _score(score_rng, weather, quality, weekend)

    names = [f"{name}_{hour}" for hour in HOURS for name in WEATHER_FEATURES]
    block = np.empty((len(names), n_days * n_sites), dtype=np.float32)  # one float32 block, no stacking
    for j, (k, name) in enumerate((k, name) for k in range(len(HOURS)) for name in WEATHER_FEATURES):
        block[j] = weather[name][k].ravel()
    table = pd.DataFrame(block.T, columns=names, copy=False)
    keys = {"site_id": np.tile(site_id, n_days), "date": np.repeat(dates.to_numpy(), n_sites),
            "lat": np.tile(np.round(lat, 4), n_days), "lon": np.tile(np.round(lon, 4), n_days),
            "altitude": np.tile(altitude, n_days)}
    for position, (column, values) in enumerate(keys.items()):
        table.insert(position, column, values)
    table["score"] = score.ravel()
    logger.info("flight table (%d sites x %d days, seed %d): %d rows, %.0f%% zero days, in %.2f s", n_sites,
                n_days, seed, len(table), 100 * np.mean(score == 0), time.perf_counter() - started)
    return table


def _score(rng: np.random.Generator, weather: dict[str, np.ndarray], quality: np.ndarray,
           weekend: np.ndarray) -> np.ndarray:
    """The day's best distance [day, site] in km by the module docstring's monotone mechanism."""
    blh, lapse, sun, base, wind, gust, rain = (weather[name] for name in (
        "boundary_layer_height", "lapse_rate", "shortwave_radiation", "cloud_base", "wind_speed_850hpa",
        "wind_gust_10m", "precipitation"))
    h12, h15 = 1, 2
    latent = (0.9 + 0.9 * (blh[h15] - 1200) / 700 + 0.45 * (lapse[h12] - 6.8) / 0.8 + 0.3 * (sun[h12] - 550) / 250
              + 0.15 * (base[h12] - 1200) / 600 - 0.9 * np.maximum(wind[h12] - 7, 0) / 3
              - 0.6 * np.maximum(gust[h15] - 13, 0) / 5 - 1.3 * np.log1p(rain[h12] + rain[h15])
              + quality + 0.35 * weekend + rng.normal(0.0, 0.6, blh.shape[1:]))
    return np.where(latent > 0, np.round(200 * (1 - np.exp(-latent / 3.6)), 1), 0.0)


def _factors(rng: np.random.Generator, n_days: int, n_sites: int) -> np.ndarray:
    """Unit-variance AR(1) factors [day, site, factor]: 0.75 regional + 0.66 local series.

    The recursion loops over days only; every step is vectorised over sites and factors.
    """
    phi = np.array([p for _, p in _FACTORS])
    shocks = rng.standard_normal((n_days, n_sites + 1, len(phi)))  # column 0: the region
    out = np.empty_like(shocks)
    out[0] = shocks[0]
    scale = np.sqrt(1 - phi**2)
    for day in range(1, n_days):
        out[day] = phi * out[day - 1] + scale * shocks[day]
    return 0.75 * out[:, :1] + np.sqrt(1 - 0.75**2) * out[:, 1:]


def _weather(rng: np.random.Generator, z: np.ndarray, season: np.ndarray, altitude: np.ndarray,
             blh_offset: np.ndarray, exposure: np.ndarray) -> dict[str, np.ndarray]:
    """Every weather feature as [hour, day, site] float64 from factors, season and site."""
    temp, press, moist_raw, wind, flow_u, flow_v, stab = np.moveaxis(z, 2, 0)
    shape = (len(HOURS),) + temp.shape

    def noise(scale: float) -> np.ndarray:
        return scale * rng.standard_normal(shape)

    heat = np.array([0.0, 0.6, 1.0])[:, None, None]  # surface heating progress at 09, 12, 15 h
    sun_hour = np.array([0.65, 1.0, 0.85])[:, None, None]
    alt_km = altitude / 1000.0
    moist = moist_raw - 0.4 * press
    strength = np.exp(0.3 * wind) * exposure
    out: dict[str, np.ndarray] = {}
    out["cloud_cover_low"] = 100 / (1 + np.exp(-(1.3 * moist - 0.4 + 0.3 * heat * stab + noise(0.3))))
    out["cloud_cover_mid"] = 100 / (1 + np.exp(-(moist - 0.8 + noise(0.4))))
    out["cloud_cover_high"] = 100 / (1 + np.exp(-(0.6 * moist - 0.5 * press + noise(0.8))))
    cloud = (0.6 * out["cloud_cover_low"] + 0.3 * out["cloud_cover_mid"] + 0.1 * out["cloud_cover_high"]) / 100
    out["shortwave_radiation"] = 1000 * (0.55 + 0.35 * season) * sun_hour * (1 - 0.75 * cloud)
    lapse = (6.2 + 0.3 * season + 0.7 * stab - 0.2 * press + heat * (0.3 + 0.6 * out["shortwave_radiation"] / 1000)
             + noise(0.15))
    out["lapse_rate"] = lapse
    out["temp_850hpa"] = 4 + 9 * season + 4 * temp + heat + noise(0.3)
    out["temp_700hpa"] = out["temp_850hpa"] - 1.5 * lapse + noise(0.2)
    out["temp_500hpa"] = out["temp_850hpa"] - 4.1 * lapse
    out["temp_2m"] = (out["temp_850hpa"] + 6.5 * (1.5 - alt_km) - 2.5 + 5 * heat * out["shortwave_radiation"] / 800
                      + noise(0.5))
    rh = np.clip(55 + 18 * moist - 12 * heat + noise(5.0), 8, 100)
    out["rel_humidity_2m"] = rh
    out["dewpoint_2m"] = out["temp_2m"] - (100 - rh) / 5
    out["cloud_base"] = 125 * (out["temp_2m"] - out["dewpoint_2m"])
    out["rel_humidity_700hpa"] = np.clip(45 + 20 * moist - 10 * press + noise(8.0), 3, 100)
    out["pressure_msl"] = 1014 + 7 * press - 1.5 * season + noise(0.5)
    for level, gain in (("850hpa", 1.0), ("700hpa", 1.4)):
        out[f"wind_u_{level}"] = gain * strength * (2.5 + 4.5 * flow_u) + noise(0.8)
        out[f"wind_v_{level}"] = gain * strength * 3.5 * flow_v + noise(0.8)
    out["wind_u_10m"] = 0.45 * out["wind_u_850hpa"] + noise(0.8)
    out["wind_v_10m"] = 0.45 * out["wind_v_850hpa"] + noise(0.8)
    for level in ("10m", "850hpa", "700hpa"):
        out[f"wind_speed_{level}"] = np.hypot(out[f"wind_u_{level}"], out[f"wind_v_{level}"])
    heat_blh = np.array([0.3, 0.8, 1.0])[:, None, None]
    out["boundary_layer_height"] = np.maximum(
        50, 200 + heat_blh * 2000 * (out["shortwave_radiation"] / 900) * np.exp(0.25 * (lapse - 6.5))
        + 40 * out["wind_speed_10m"] + blh_offset + 0.1 * altitude + noise(100.0))
    out["wind_gust_10m"] = 1.4 * out["wind_speed_10m"] + 0.0015 * out["boundary_layer_height"] + np.abs(noise(0.5))
    wet = moist - 0.6 * press + 0.4 * heat * stab + noise(0.5)
    out["precipitation"] = np.where(wet > 1.1, 2.5 * np.maximum(wet - 1.1, 0) ** 1.5, 0.0)
    out["cape"] = np.maximum(0, 250 * (lapse - 6.0) * rh / 60 * (0.3 + 0.7 * (season + 1) / 2) + noise(30.0))
    return out


def frame_flights(table: pd.DataFrame, name: str, attrs: dict | None = None) -> Collection:
    """Validate a site-day table and build the threshold-classification collection.

    Parameters
    ----------
    table : pandas.DataFrame
        The module's schema; weather features are every ``<feature>_h09`` column with its
        ``_h12`` and ``_h15`` partners, in the order of the ``_h09`` columns.
    name : str
        Part name.
    attrs : dict, optional
        Extra collection attributes.

    Returns
    -------
    Collection
        One part, samples ordered by (date, site_id): ``features`` (sample, feature) float32 =
        weather hour-major (all features at h09, then h12, then h15), then ``lat``, ``lon``,
        ``altitude``, then ``weekend`` (0/1), ``doy_sin``, ``doy_cos``, ``year`` (years since
        the table's first year); ``site`` (sample,) int64 index of the sorted site ids;
        ``targets`` (sample, threshold) float32, ``score > t`` for t in :data:`THRESHOLDS`;
        ``date`` (sample,) int64 days since 1970-01-01. Coordinates ``feature``, ``threshold``,
        per-sample ``site_id`` and ``day`` (ISO date); attrs ``task`` ("thresholds"),
        ``thresholds``, ``feature_names``, ``site_ids``, ``first_year``.

    Raises
    ------
    TrainsetError
        For a missing column or hour, a non-numeric or NaN value, an unparseable date,
        duplicate (site_id, date) rows, site columns that vary within a site, or a negative score.
    """
    started = time.perf_counter()
    weather = _weather_columns(table)
    numeric = [*weather, *SITE_FEATURES, "score"]
    for column in ("site_id", "date", *numeric):
        if column not in table.columns:
            raise TrainsetError(f"flight table: missing column {column!r}. Fix: add it (see trainset.domains.flights)")
        missing = table[column].isna()
        if missing.any():
            raise TrainsetError(f"flight table: column {column!r} has {int(missing.sum())} missing values. "
                                f"Fix: fill them or drop those site-days upstream")
    for column in numeric:
        if table[column].dtype.kind not in "iufb":
            raise TrainsetError(f"flight table: column {column!r} is {table[column].dtype}, not numeric. Fix: convert it")
    ignored = sorted(set(table.columns) - {"site_id", "date", *numeric})
    if ignored:
        logger.warning("flight table: ignoring columns %s", ignored)
    score = table["score"].to_numpy(np.float64)
    if (score < 0).any():
        raise TrainsetError(f"flight table: column 'score' has {int((score < 0).sum())} negative values. "
                            f"Fix: scores are distances in km >= 0 (0 for no flight)")
    try:
        days = pd.to_datetime(table["date"]).to_numpy().astype("datetime64[D]")
    except (ValueError, TypeError) as error:
        raise TrainsetError(f"flight table: column 'date' is not a date ({error}). Fix: use ISO dates") from error
    day_number = (days - _EPOCH).astype(np.int64)
    site_ids, site = _site_codes(table["site_id"])
    order = np.lexsort((site, day_number))
    same = (np.diff(day_number[order]) == 0) & (np.diff(site[order]) == 0)
    if same.any():
        row = order[np.argmax(same)]
        raise TrainsetError(f"flight table: {int(same.sum())} duplicate (site_id, date) rows, e.g. site_id="
                            f"{site_ids[site[row]].item()!r}, date={days[row]}. Fix: keep one row per site and day")
    for column in SITE_FEATURES:
        values = table[column].to_numpy(np.float64)
        first = np.empty(len(site_ids))
        first[site[::-1]] = values[::-1]  # the first row's value of each site
        if (values != first[site]).any():
            raise TrainsetError(f"flight table: column {column!r} varies within a site. "
                                f"Fix: one {column} per site_id")

    days, day_number, site = days[order], day_number[order], site[order]
    doy = pd.DatetimeIndex(days).day_of_year.to_numpy()
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    first_year = int(years.min())
    angle = 2 * np.pi * (doy - 1) / 365.25
    date_features = {"weekend": ((day_number + 3) % 7 >= 5), "doy_sin": np.sin(angle), "doy_cos": np.cos(angle),
                     "year": years - first_year}  # 1970-01-01 was a Thursday: (n + 3) % 7 is Mon=0
    names = [*weather, *SITE_FEATURES, *DATE_FEATURES]
    features = np.empty((len(order), len(names)), dtype=np.float32)
    for j, column in enumerate(names[: len(weather) + len(SITE_FEATURES)]):
        features[:, j] = table[column].to_numpy()[order]
    for j, column in enumerate(DATE_FEATURES, start=len(weather) + len(SITE_FEATURES)):
        features[:, j] = date_features[column]
    thresholds = np.asarray(THRESHOLDS, dtype=np.int64)
    targets = (score[order][:, None] > thresholds[None, :]).astype(np.float32)
    import xarray as xr

    dataset = xr.Dataset(
        {"features": (("sample", "feature"), features), "site": (("sample",), site),
         "targets": (("sample", "threshold"), targets), "date": (("sample",), day_number)},
        coords={"feature": np.array(names), "threshold": thresholds, "site_id": ("sample", site_ids[site]),
                "day": ("sample", np.datetime_as_string(days, unit="D").astype("U10"))})
    out_attrs = {"task": "thresholds", "thresholds": [int(t) for t in THRESHOLDS], "feature_names": names,
                 "site_ids": [s.item() if hasattr(s, "item") else s for s in site_ids], "first_year": first_year,
                 "hours": list(HOURS)}
    logger.info("framed %s: %d site-days x %d features, %d sites, in %.2f s", name, len(order), len(names),
                len(site_ids), time.perf_counter() - started)
    return Collection.single(dataset, name=name, attrs={**out_attrs, **dict(attrs or {})})


def _weather_columns(table: pd.DataFrame) -> list[str]:
    """Weather columns hour-major, features in the order of the ``_h09`` columns."""
    first = f"_{HOURS[0]}"
    features = [c[: -len(first)] for c in table.columns if isinstance(c, str) and c.endswith(first)]
    if not features:
        raise TrainsetError(f"flight table: no weather columns (named <feature>{first}). Fix: add weather at "
                            f"{', '.join(HOURS)} as <feature>_h09, <feature>_h12, <feature>_h15")
    columns = [f"{feature}_{hour}" for hour in HOURS for feature in features]
    for column in columns:
        if column not in table.columns:
            raise TrainsetError(f"flight table: missing column {column!r}; every weather feature needs all of "
                                f"{', '.join(HOURS)}. Fix: add it or drop the feature's other hours")
    return columns


def _site_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique site ids and each row's index 0..S-1 among them (for an embedding)."""
    codes, uniques = pd.factorize(column, sort=True)
    uniques = np.asarray(uniques)
    if uniques.dtype.kind not in "iu":
        uniques = uniques.astype(str)
    return uniques, codes.astype(np.int64)


def date_block_splits(collection: Collection, seed: int, fractions: dict[str, float] | None = None,
                      block_days: int = 28, shuffle: bool = False) -> Splits:
    """Split site-days by contiguous blocks of dates, so no day is in two splits.

    Whole days go together because all sites share a day's regional weather; whole blocks go
    together because weather persists for days, so a day's neighbours would leak its answer.

    Parameters
    ----------
    collection : Collection
        A :func:`frame_flights` collection (its ``date`` variable, over all parts in order).
    seed : int
        Experiment seed; orders the blocks when ``shuffle`` is True.
    fractions : dict, optional
        Split name -> share of site-days; default train 0.7, val 0.15, test 0.15.
    block_days : int
        Days per block, counted from the first date.
    shuffle : bool
        False (default): chronological, earliest blocks to the first split (``make_splits``
        method ``time``), the honest test of a forecast. True: blocks assigned in a seeded
        random order (method ``group``), so every split spans all seasons.

    Returns
    -------
    dict of str to ndarray
        Sorted global sample indices per split.

    Raises
    ------
    TrainsetError
        If the collection has no ``date`` variable or a split would be empty.
    """
    fractions = dict(fractions or {"train": 0.7, "val": 0.15, "test": 0.15})
    if block_days < 1:
        raise TrainsetError(f"date_block_splits: block_days must be >= 1; got {block_days}")
    try:
        date = np.concatenate([part["date"].values for part in collection.parts.values()]).astype(np.int64)
    except KeyError as error:
        raise TrainsetError("date_block_splits: the collection has no 'date' variable. "
                            "Fix: frame it with frame_flights") from error
    block = (date - date.min()) // block_days
    method = "group" if shuffle else "time"
    splits = make_splits(len(date), {"method": method, "fractions": fractions}, seed,
                         groups=block if shuffle else None, times=None if shuffle else block)
    empty = [name for name, indices in splits.items() if fractions[name] > 0 and not indices.size]
    if empty:
        raise TrainsetError(f"date_block_splits: split(s) {empty} empty with {int(block.max()) + 1} blocks of "
                            f"{block_days} days. Fix: lower block_days")
    logger.info("date-block splits (%d-day blocks, %s): %s", block_days, method,
                {name: int(ix.size) for name, ix in splits.items()})
    return splits
