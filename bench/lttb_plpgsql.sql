-- Largest-Triangle-Three-Buckets in PL/pgSQL: the published algorithm (Steinarsson 2013),
-- written independently of the Rust module so pg_regress can check one against the other and
-- bench/ can time both. Points are (ts, value) in time order; x is microseconds since 1970.
CREATE OR REPLACE FUNCTION lttb_plpgsql(ts timestamptz[], vs float8[], threshold int)
RETURNS TABLE (t timestamptz, v float8) LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  n int := coalesce(array_length(ts, 1), 0);
  xs float8[];
  every float8;
  a int := 0;            -- 0-based index of the last chosen point
  avg_start int; avg_end int; avg_x float8; avg_y float8;
  range_start int; range_end int; ax float8; ay float8;
  max_area float8; area float8; next_a int;
BEGIN
  IF threshold >= n OR threshold < 3 THEN
    RETURN QUERY SELECT * FROM unnest(ts, vs);
    RETURN;
  END IF;
  xs := ARRAY(SELECT (extract(epoch FROM x) * 1000000)::float8 FROM unnest(ts) WITH ORDINALITY u(x, k) ORDER BY k);
  every := (n - 2)::float8 / (threshold - 2);
  t := ts[1]; v := vs[1]; RETURN NEXT;
  FOR i IN 0 .. threshold - 3 LOOP
    avg_start := floor((i + 1) * every)::int + 1;
    avg_end := least(floor((i + 2) * every)::int + 1, n);
    avg_x := 0; avg_y := 0;
    FOR j IN avg_start .. avg_end - 1 LOOP
      avg_x := avg_x + xs[j + 1];
      avg_y := avg_y + vs[j + 1];
    END LOOP;
    avg_x := avg_x / (avg_end - avg_start);
    avg_y := avg_y / (avg_end - avg_start);
    range_start := floor(i * every)::int + 1;
    range_end := floor((i + 1) * every)::int + 1;
    ax := xs[a + 1]; ay := vs[a + 1];
    max_area := -1;
    FOR j IN range_start .. range_end - 1 LOOP
      area := abs((ax - avg_x) * (vs[j + 1] - ay) - (ax - xs[j + 1]) * (avg_y - ay)) * 0.5;
      IF area > max_area THEN
        max_area := area;
        next_a := j;
      END IF;
    END LOOP;
    t := ts[next_a + 1]; v := vs[next_a + 1]; RETURN NEXT;
    a := next_a;
  END LOOP;
  t := ts[n]; v := vs[n]; RETURN NEXT;
END $$;
