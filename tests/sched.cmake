# Scheduler tests (included by tests/CMakeLists.txt after the unit, e2e and fuzz
# sections).
#
# sched_probe answers time zone and cron queries on stdin for the differential
# tests tests/e2e/test_tz_zoneinfo.py (against Python's zoneinfo, every zone) and
# tests/e2e/test_cron_oracle.py (against the project's own tests/tools/cron_rules.py, and
# research/cron_oracle.py when ../shared is beside the checkout). Those two are
# registered once, by the e2e glob; here we only hand them the probe's path in
# ORCH_SCHED_PROBE (without it they skip) and label them. They need Debian's
# python3-pytest, python3-croniter and tzdata.
if(TARGET orch_sched)
  add_executable(sched_probe ${CMAKE_CURRENT_SOURCE_DIR}/tools/sched_probe.c)
  target_link_libraries(sched_probe PRIVATE orch_sched)

  foreach(t e2e.test_tz_zoneinfo e2e.test_cron_oracle)
    if(TEST ${t})
      set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
        "ORCH_SCHED_PROBE=$<TARGET_FILE:sched_probe>")
      set_property(TEST ${t} APPEND PROPERTY LABELS sched)
      # Each uses two worker processes.
      set_property(TEST ${t} PROPERTY PROCESSORS 2)
    endif()
  endforeach()
  if(TEST unit.test_tz)
    set_property(TEST unit.test_tz unit.test_cron APPEND PROPERTY LABELS sched)
  endif()
endif()
