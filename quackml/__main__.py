from quackml import main

raise SystemExit(main())
